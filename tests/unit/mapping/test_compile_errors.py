"""Invalid mappings, each with the exact message the IT team reads."""

from __future__ import annotations

import pytest

from connector.errors import MappingError
from connector.mapping import compile_mapping, parse_mapping

HEAD = '''
version = 1
name = "t"
kind = "{kind}"
[source]
type = "csv"
folder = "in"
key = ["n_bon"]
[fields]
'''


def problems_of(fields: str, kind: str = "BSDD", schema=None) -> list[str]:
    text = HEAD.format(kind=kind) + fields
    with pytest.raises(MappingError) as caught:
        compile_mapping(parse_mapping(text, path="m.toml"), schema, path="m.toml")
    return caught.value.problems


CASES = [
    ('"emitter.company.sirte" = "siret"',
     'm.toml: fields."emitter.company.sirte": unknown field \'emitter.company.sirte\' in CreateFormInput '
     '(did you mean "emitter.company.siret"?)'),
    ('"emiter.company.siret" = "siret"',
     'm.toml: fields."emiter.company.siret": unknown field \'emiter\' in CreateFormInput '
     '(in \'emiter.company.siret\') (did you mean "emitter.company.siret"?)'),
    ('"emitter.company" = "siret"',
     'm.toml: fields."emitter.company": \'emitter.company\' is an object (CompanyInput), not a value: '
     'map its fields, e.g. "emitter.company.siret"'),
    ('"wasteDetails.packagingInfos.type" = "c"',
     'm.toml: fields."wasteDetails.packagingInfos.type": \'wasteDetails.packagingInfos\' is a list of '
     'PackagingInfoInput: map it as a whole with {children=...} or {items=[...]}, not field by field'),
    ('"wasteDetails.packagingInfos" = "c"',
     'm.toml: fields."wasteDetails.packagingInfos": is a list of PackagingInfoInput: build it with '
     '{children="...", fields={...}} or {items=[{...}]}'),
    ('"emitter.type" = { const = "PRODUCTEUR" }',
     'm.toml: fields."emitter.type": const \'PRODUCTEUR\' does not fit EmitterType: "PRODUCTEUR" is not '
     'a EmitterType (valid: PRODUCER, OTHER, APPENDIX1, APPENDIX1_PRODUCER, APPENDIX2)'),
    ('"wasteDetails.quantity" = { const = true }',
     'm.toml: fields."wasteDetails.quantity": const True does not fit Float: "True" is not a number'),
    ('"wasteDetails.quantityType" = { column = "q", transforms = '
     '[{ name = "map", values = { r = "REEL" } }] }',
     'm.toml: fields."wasteDetails.quantityType": map value \'REEL\': "REEL" is not a QuantityType '
     '(valid: REAL, ESTIMATED)'),
    ('"emitter.company.name" = { template = "{nom!r}" }',
     'm.toml: fields."emitter.company.name": template \'{nom!r}\': write plain column names between '
     'braces, e.g. "{adresse} {code_postal}"'),
    ('"emitter.company.name" = { template = "{nom" }',
     "m.toml: fields.\"emitter.company.name\": template '{nom': expected '}' before end of string"),
    ('"wasteDetails.quantity" = { column = "d", transforms = [{ name = "date", formats = ["jj/mm"] }] }',
     'm.toml: fields."wasteDetails.quantity": transforms[0]: date format \'jj/mm\' has an unknown token '
     "(use dd, mm, yyyy, HH, MM, SS or 'iso')"),
    ('"emitter.company.siret" = { column = "s", transforms = ["uper"] }',
     'm.toml: fields."emitter.company.siret".transforms[0]: unknown transform "uper" (did you mean '
     '"upper"?); valid: date, decimal, int, kg_to_t, t_to_kg, waste_code, siret, upper, lower, strip, '
     'bool, split, operation_code, map, default'),
    ('"emitter.company.siret" = { colum = "s" }',
     'm.toml: fields."emitter.company.siret": needs one of column, const, template, lookup, children, items'
     ' (found keys: colum)'),
    ('"emitter.company.siret" = { column = "s", colour = "red" }',
     'm.toml: fields."emitter.company.siret".colour: unknown key \'colour\''),
    ('"wasteDetails.pop" = { column = "p", default = "peut-être" }',
     'm.toml: fields."wasteDetails.pop": default \'peut-être\' does not fit Boolean: "peut-être" is not a '
     'yes/no value (oui/non, 1/0, true/false, x)'),
]


@pytest.mark.parametrize(("fields", "expected"), CASES)
def test_each_invalid_field_gets_one_exact_message(fields, expected, schema):
    assert problems_of(fields, schema=schema) == [expected]


def test_every_problem_is_reported_at_once(schema):
    problems = problems_of('"a.b" = "x"\n"emitter.type" = { const = "NOPE" }\n"customId" = "n"\n'
                           '"wasteDetails.cod" = "c"', schema=schema)
    assert len(problems) == 3
    assert all(p.startswith("m.toml: fields.") for p in problems)


def test_unknown_kind_lists_the_valid_ones(schema):
    text = HEAD.format(kind="BSDX") + '"customId" = "n"'
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, path="m.toml")
    assert caught.value.problems == [
        "m.toml: kind: Input should be 'BSDD', 'BSDA', 'BSDASRI', 'BSFF', 'BSVHU' or 'BSPAOH'"
    ]


def test_kind_missing_from_target_schema_is_refused():
    from graphql import build_schema

    tiny = build_schema("type Query { a: Int }")
    with pytest.raises(MappingError) as caught:
        compile_mapping(parse_mapping(HEAD.format(kind="BSPAOH") + '"x" = "y"', path="m.toml"), tiny,
                        path="m.toml")
    assert caught.value.problems == [
        "m.toml: kind: BSPAOH needs input type BspaohInput, which the target's schema does not have"
    ]


def test_invalid_toml_names_the_file():
    with pytest.raises(MappingError, match=r"^m.toml: not valid TOML: "):
        parse_mapping("name = ", path="m.toml")


def test_column_problems_suggest_the_closest_existing_column(schema):
    text = HEAD.format(kind="BSDD") + '"emitter.company.siret" = "siret_prod"\n' \
        '"emitter.company.name" = { template = "{raison} {forme}" }'
    mapping = compile_mapping(parse_mapping(text, path="mappings/x.toml"), schema, path="mappings/x.toml")
    assert mapping.required_columns() == {"n_bon", "siret_prod", "raison", "forme"}
    assert mapping.check_columns(["n_bon", "siret_producteur", "raison_sociale", "forme"]) == [
        'mappings/x.toml: fields."emitter.company.siret": unknown column "siret_prod" '
        '(did you mean "siret_producteur"?)',
        'mappings/x.toml: fields."emitter.company.name": unknown column "raison" '
        '(did you mean "raison_sociale"?)',
    ]
    assert mapping.check_columns(["a"]) == [
        'mappings/x.toml: source.key: unknown column "n_bon" (columns: a)',
        'mappings/x.toml: fields."emitter.company.siret": unknown column "siret_prod" (columns: a)',
        'mappings/x.toml: fields."emitter.company.name": unknown column "raison" (columns: a)',
        'mappings/x.toml: fields."emitter.company.name": unknown column "forme" (columns: a)',
    ]
