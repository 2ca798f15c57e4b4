"""Tables an ERP would have, and a handle on one throw-away database (shared by SQL source tests)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

metadata = sa.MetaData()
enlevements = sa.Table(
    "enlevements", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("producteur", sa.String(100)),
    sa.Column("poids", sa.Numeric(10, 3)),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("a_envoyer", sa.String(10)),
    sa.Column("bsd_id", sa.String(50), nullable=False, server_default=""),
    sa.Column("statut", sa.String(50)),
    sa.Index("ix_enlevements_updated_at", "updated_at", "id"),
)
emballages = sa.Table(
    "emballages", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("enlevement_id", sa.Integer, nullable=False),
    sa.Column("type", sa.String(20)),
    sa.Column("quantite", sa.Integer),
)


@dataclass
class Db:
    dialect: str
    url: str
    engine: sa.Engine

    def insert(self, table: sa.Table, *rows: dict[str, object]) -> None:
        with self.engine.begin() as conn:
            conn.execute(table.insert(), list(rows))

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
