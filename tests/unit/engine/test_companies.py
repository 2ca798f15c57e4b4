"""Which companies a record names: the emitter first, then every other one, each once."""

from __future__ import annotations

from connector.engine.companies import named_org_ids


def test_the_emitter_comes_first_then_every_company_the_payload_names() -> None:
    payload = {
        "customId": "BE-1",
        "recipient": {"company": {"siret": "44019372000255"}},
        "transporter": {"company": {"siret": "", "vatNumber": "BE0123456789"}},
        "emitter": {"type": "PRODUCER", "company": {"siret": "85243162000123"}},
        "trader": {"company": {"siret": "44019372000255"}},
        "intermediaries": [{"siret": "51830934000140"}],
        "ecoOrganisme": {"siret": " 79320856000185 "},
    }
    assert named_org_ids(payload) == [
        "85243162000123", "44019372000255", "BE0123456789", "51830934000140", "79320856000185",
    ]
    assert named_org_ids({}) == []
    assert named_org_ids(None) == []
