"""``[[rules]]``: checks over columns whether or not they are sent, each with its own message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.errors import MappingError, RecordError
from connector.mapping import load_mapping
from connector.sources.base import SourceRecord

HEAD = ('version = 1\nname = "t"\nkind = "BSDD"\n[source]\ntype = "csv"\nfolder = "in"\nkey = ["k"]\n'
        '[lifecycle]\nseal = false\n[fields]\n"wasteDetails.name" = "designation"\n')
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

RULES = '''
[[rules]]
name = "pickup date"
column = "date_enlevement"
check = "date"
formats = ["dd/mm/yyyy"]
required = true
not_future = true
max_past_days = 60
message = "date d'enlèvement à corriger"

[[rules]]
name = "weight"
column = "poids_kg"
check = "number"
min = 0.1
max = 40000

[[rules]]
name = "order number"
column = "n_bon"
check = "pattern"
regex = "BE-\\\\d{4}-\\\\d{4}"

[[rules]]
column = "unite"
check = "one_of"
values = ["kg", "t"]

[[rules]]
name = "other only for AUTRE"
column = "precision"
check = "empty"
unless = { column = "conditionnement", equals = "AUTRE" }

[[rules]]
name = "ADR mention"
column = "mention_adr"
check = "required"
when = { column = "soumis_adr", in = ["oui", "o", "1", "x"] }
'''

GOOD = {"designation": "Huiles", "date_enlevement": "03/03/2026", "poids_kg": "1 250,5",
        "n_bon": "BE-2026-0412",
        "unite": "KG", "precision": "", "conditionnement": "FUT", "soumis_adr": "non", "mention_adr": ""}


def load(tmp_path: Path, schema, rules: str = RULES):
    path = tmp_path / "m.toml"
    path.write_text(HEAD + rules, "utf-8")
    return load_mapping(path, schema)


def problems(mapping, **changes: str) -> list[str]:
    record = SourceRecord(key="K", origin="x.csv:line 4", values={**GOOD, **changes})
    with pytest.raises(RecordError) as caught:
        mapping.apply(record, now=NOW)
    return caught.value.problems  # type: ignore[attr-defined,no-any-return]


def test_a_good_row_passes_and_rule_columns_are_not_sent(schema, tmp_path):
    mapping = load(tmp_path, schema)
    payload = mapping.apply(SourceRecord(key="K", origin="o", values=GOOD), now=NOW)
    assert payload == {"wasteDetails": {"name": "Huiles"}, "customId": "K"}
    assert {"date_enlevement", "poids_kg", "conditionnement", "soumis_adr"} <= mapping.required_columns()


@pytest.mark.parametrize(("changes", "expected"), [
    ({"date_enlevement": "31/02/2026"},
     'rule "pickup date" (column "date_enlevement"): date d\'enlèvement à corriger ("31/02/2026" is not a '
     "date (expected dd/mm/yyyy))"),
    ({"date_enlevement": "11/03/2026"},
     'rule "pickup date" (column "date_enlevement"): date d\'enlèvement à corriger ("11/03/2026" is in the '
     "future (today is 10/03/2026))"),
    ({"date_enlevement": "01/01/2026"},
     'rule "pickup date" (column "date_enlevement"): date d\'enlèvement à corriger ("01/01/2026" is more '
     "than 60 days ago)"),
    ({"date_enlevement": " "},
     'rule "pickup date" (column "date_enlevement"): date d\'enlèvement à corriger (is empty)'),
    ({"poids_kg": "0"}, 'rule "weight" (column "poids_kg"): "0" is below the minimum 0.1'),
    ({"poids_kg": "45 000"}, 'rule "weight" (column "poids_kg"): "45 000" is above the maximum 40000'),
    ({"poids_kg": "12,x"}, 'rule "weight" (column "poids_kg"): "12,x" is not a number'),
    ({"n_bon": "BE-26-1"}, 'rule "order number" (column "n_bon"): "BE-26-1" does not match '
                           "'BE-\\\\d{4}-\\\\d{4}'"),
    ({"unite": "litre"}, 'rule #4 (column "unite"): "litre" is not one of kg, t'),
    ({"precision": "fût 200 l"}, 'rule "other only for AUTRE" (column "precision"; also read '
                                 '"conditionnement"): '
                                 'must be empty, found "fût 200 l"'),
    ({"soumis_adr": "OUI"}, 'rule "ADR mention" (column "mention_adr"; also read "soumis_adr"): is empty'),
])
def test_each_rule_rejects_with_its_message_and_columns(schema, tmp_path, changes, expected):
    assert problems(load(tmp_path, schema), **changes) == [f"x.csv:line 4: {expected}"]


def test_cross_field_rules_pass_when_their_condition_allows(schema, tmp_path):
    mapping = load(tmp_path, schema)
    values = {**GOOD, "conditionnement": "autre", "precision": "caisse", "soumis_adr": "oui",
              "mention_adr": "UN 1202"}
    assert mapping.apply(SourceRecord(key="K", origin="o", values=values), now=NOW)


def test_every_failing_rule_and_field_reported_together(schema, tmp_path):
    found = problems(load(tmp_path, schema), date_enlevement="31/02/2026", unite="l", designation="")
    assert len(found) == 2
    record_error_columns = load(tmp_path, schema)
    with pytest.raises(RecordError) as caught:
        record_error_columns.apply(SourceRecord(key="K", origin="o", values={**GOOD, "unite": "l"}), now=NOW)
    assert caught.value.column == "unite"


def test_rule_columns_are_checked_against_the_source(schema, tmp_path):
    mapping = load(tmp_path, schema)
    columns = ["k", *GOOD]
    columns.remove("soumis_adr")
    assert mapping.check_columns([*columns, "soumis"]) == [
        f'{tmp_path / "m.toml"}: rules[5] condition: unknown column "soumis_adr" (did you mean "soumis"?)']


@pytest.mark.parametrize(("rule", "expected"), [
    ('column = "a"\ncheck = "number"\nregex = "x"', 'rules[0]: regex does not apply to check "number"'),
    ('column = "a"\ncheck = "pattern"', 'rules[0]: check "pattern" needs a "regex"'),
    ('column = "a"\ncheck = "pattern"\nregex = "("', "rules[0]: regex '(' is not a valid regular expression: "
                                                   "missing ), unterminated subpattern at position 0"),
    ('column = "a"\ncheck = "one_of"\nvalues = []',
     'rules[0]: check "one_of" needs a non-empty "values" list'),
    ('column = "a"\ncheck = "number"\nmin = 5\nmax = 1', "rules[0]: min 5 is greater than max 1"),
    ('column = "a"\ncheck = "date"\nformats = ["jj/mm/aaaa"]',
     "rules[0]: date format 'jj/mm/aaaa' has an unknown token (use dd, mm, yyyy, HH, MM, SS or 'iso')"),
    ('column = "a"\ncheck = "dates"',
     "rules[0].check: Input should be 'required', 'empty', 'date', 'number', "
                                      "'pattern' or 'one_of'"),
    ('column = "a"\ncheck = "required"\nwhen = { field = "wasteDetails.name" }',
     "rules[0]: a rule's conditions read columns, not mapped fields"),
])
def test_bad_rules_are_refused_at_load(schema, tmp_path, rule, expected):
    with pytest.raises(MappingError) as caught:
        load(tmp_path, schema, "[[rules]]\n" + rule + "\n")
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [expected]
