"""The emulator's built-in demo accounts: fictitious companies, their profiles and API tokens.

The connector's demo, example mappings and tests name the same companies
(``connector/domain/demo_companies.py``); the emulator keeps its own list so that it imports
nothing from the connector. ``tests/integration/emulator/test_separation.py`` checks the two lists agree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEMO_ACCOUNTS", "DEMO_TOKEN", "OTHER_TOKEN", "DemoAccount"]

DEMO_TOKEN = "demo-token-producer-0001"
"""Token of the producer's user: the account a demo connector runs with."""
OTHER_TOKEN = "demo-token-outsider-0002"
"""Token of a user of an unrelated company, for FORBIDDEN answers."""


@dataclass(frozen=True)
class DemoAccount:
    key: str
    siret: str
    name: str
    address: str
    contact: str
    phone: str
    mail: str
    company_types: tuple[str, ...]

    @property
    def token(self) -> str:
        return {"producer": DEMO_TOKEN, "outsider": OTHER_TOKEN}.get(self.key, f"demo-token-{self.key}")


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("producer", "85243162000123", "Garage Dupont & Fils", "12 rue des Lilas, 69003 Lyon",
                "Marie Dupont", "04 72 00 00 01", "marie.dupont@garage-dupont.example", ("PRODUCER",)),
    DemoAccount("transporter", "51830934000140", "Transports Rhône Déchets", "4 avenue du Port, 69007 Lyon",
                "Karim Benali", "04 72 00 00 02", "exploitation@trd.example", ("TRANSPORTER",)),
    DemoAccount("destination", "44019372000255", "Centre de Traitement Saint-Fons",
                "Zone industrielle, 69190 Saint-Fons", "Sophie Martin", "04 72 00 00 03",
                "accueil@ctsf.example",
                ("WASTEPROCESSOR", "COLLECTOR", "WASTE_VEHICLES", "WASTE_CENTER")),
    DemoAccount("vhu_emitter", "79320856000185", "Casse Auto Villeurbanne",
                "8 rue de la Casse, 69100 Villeurbanne", "Paul Girard", "04 72 00 00 04",
                "contact@casse-villeurbanne.example", ("PRODUCER", "WASTE_VEHICLES")),
    DemoAccount("worker", "33291405000114", "Désamiantage Lyonnais", "3 chemin du Chantier, 69008 Lyon",
                "Luc Moreau", "04 72 00 00 05", "chantiers@desamiantage.example", ("WORKER", "PRODUCER")),
    DemoAccount("outsider", "90123456000174", "Société Tierce", "1 place Bellecour, 69002 Lyon", "Anne Petit",
                "04 72 00 00 06", "anne.petit@tierce.example", ("PRODUCER",)),
)
