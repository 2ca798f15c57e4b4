"""Fictitious companies used by the demo, the example mappings and the emulator's demo seed.

Their SIRETs pass the Luhn check; the emulator registers them with the profiles their role needs,
so a mapping written against them seals on the emulator exactly as it would on the sandbox with
real registered companies.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEMO_COMPANIES", "DEMO_TOKEN", "OTHER_TOKEN", "DemoCompany"]

DEMO_TOKEN = "demo-token-producer-0001"
"""Token of the demo user, member of the producer company (the connector's own company)."""
OTHER_TOKEN = "demo-token-outsider-0002"
"""Token of a user of an unrelated company: acting on the demo BSDs is FORBIDDEN for it."""


@dataclass(frozen=True)
class DemoCompany:
    siret: str
    name: str
    address: str
    contact: str
    phone: str
    mail: str
    profiles: tuple[str, ...]
    """Trackdéchets ``CompanyType`` values the emulator registers the company with."""


DEMO_COMPANIES: dict[str, DemoCompany] = {
    "producer": DemoCompany(
        "85243162000123", "Garage Dupont & Fils", "12 rue des Lilas, 69003 Lyon", "Marie Dupont",
        "04 72 00 00 01", "marie.dupont@garage-dupont.example", ("PRODUCER",),
    ),
    "transporter": DemoCompany(
        "51830934000140", "Transports Rhône Déchets", "4 avenue du Port, 69007 Lyon", "Karim Benali",
        "04 72 00 00 02", "exploitation@trd.example", ("TRANSPORTER",),
    ),
    "destination": DemoCompany(
        "44019372000255", "Centre de Traitement Saint-Fons", "Zone industrielle, 69190 Saint-Fons",
        "Sophie Martin", "04 72 00 00 03", "accueil@ctsf.example",
        ("WASTEPROCESSOR", "COLLECTOR", "WASTE_VEHICLES", "WASTE_CENTER"),
    ),
    "vhu_emitter": DemoCompany(
        "79320856000185", "Casse Auto Villeurbanne", "8 rue de la Casse, 69100 Villeurbanne",
        "Paul Girard", "04 72 00 00 04", "contact@casse-villeurbanne.example",
        ("PRODUCER", "WASTE_VEHICLES"),
    ),
    "worker": DemoCompany(
        "33291405000114", "Désamiantage Lyonnais", "3 chemin du Chantier, 69008 Lyon",
        "Luc Moreau", "04 72 00 00 05", "chantiers@desamiantage.example", ("WORKER", "PRODUCER"),
    ),
    "outsider": DemoCompany(
        "90123456000174", "Société Tierce", "1 place Bellecour, 69002 Lyon", "Anne Petit",
        "04 72 00 00 06", "anne.petit@tierce.example", ("PRODUCER",),
    ),
}
