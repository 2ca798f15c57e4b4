"""``td-connector init``: sample a CSV export or an SQL table, write a mapping draft and a config.

The I/O half (reading a sample, writing files without overwriting); the draft itself is the pure
``connector.mapping.draft``. The schema is the one shipped with the package (offline: ``init``
needs neither a token nor the network).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from itertools import islice
from pathlib import Path
from typing import Any

from connector.domain.kinds import KindName
from connector.mapping.draft import draft_mapping

__all__ = ["add_arguments", "read_csv_sample", "read_sql_sample", "run_init"]

_SAMPLE = 200
_CURSOR = re.compile(r"updated|modif|maj|changed|horodat")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--csv", type=Path, help="a CSV export (its folder becomes the drop folder)")
    where.add_argument("--sql", metavar="URL", help="SQLAlchemy URL of the business database")
    parser.add_argument("--table", help="with --sql: the table (or view) to read")
    parser.add_argument("--query", help="with --sql: a SELECT instead of a table")
    parser.add_argument("--kind", default="BSDD", choices=[k.value for k in KindName])
    parser.add_argument("--name", help="mapping name (default: from the file or table name)")
    parser.add_argument("--key", help="the column identifying a row (default: the first unique one)")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder to write into (default: .)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


def read_csv_sample(path: Path) -> tuple[list[str], list[dict[str, Any]], str]:
    """(columns, first rows, delimiter), the encoding and delimiter detected as the source does."""
    from connector.sources.csv_text import inspect_file, sniff_delimiter

    facts = inspect_file(path)
    with path.open(encoding=facts.encoding, errors="replace", newline="") as handle:
        delimiter = sniff_delimiter(handle.readline())
        handle.seek(0)
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [{(k or "").strip(): v for k, v in row.items()} for row in islice(reader, _SAMPLE)]
    return columns, rows, delimiter


def read_sql_sample(url: str, *, table: str | None,
                    query: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    import sqlalchemy as sa

    from connector.sources.sql_query import expand_env
    from connector.sources.sql_values import to_plain

    engine = sa.create_engine(expand_env(url))
    try:
        with engine.connect() as conn:
            if query:
                statement: Any = sa.text(f"SELECT * FROM ({query}) AS sample")
            else:
                assert table is not None
                schema_name, _, name = table.rpartition(".")
                relation = sa.Table(name, sa.MetaData(), schema=schema_name or None, autoload_with=conn)
                statement = sa.select(relation)
            result = conn.execute(statement.limit(_SAMPLE) if not query else statement)
            columns = list(result.keys())
            rows = [{c: to_plain(v) for c, v in zip(columns, row, strict=True)}
                    for row in islice(result, _SAMPLE)]
    finally:
        engine.dispose()
    return columns, rows


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-")[:64] or "mapping"


def run_init(args: argparse.Namespace) -> int:
    from connector.trackdechets.schema import packaged_schema

    kind = KindName(args.kind)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.csv is not None:
        csv_path: Path = args.csv
        if not csv_path.is_file():
            print(f"td-connector init: {csv_path}: no such file", file=sys.stderr)
            return 2
        columns, rows, delimiter = read_csv_sample(csv_path)
        stem = re.sub(r"[\d_\-]+$", "", csv_path.stem) or csv_path.stem
        folder = _relative(csv_path.parent.resolve(), out.resolve())
        source = (f'[source]\ntype = "csv"\nfolder = "{folder}"\npattern = "{stem}*{csv_path.suffix}"\n'
                  f'delimiter = "{delimiter}"')
        name, origin = args.name or _slug(f"{kind.value.lower()}-{stem}"), str(csv_path)
    else:
        if bool(args.table) == bool(args.query):
            print("td-connector init: with --sql give --table or --query", file=sys.stderr)
            return 2
        columns, rows = read_sql_sample(args.sql, table=args.table, query=args.query)
        what = f'table = "{args.table}"' if args.table else f'query = """{args.query}"""'
        cursor = next((c for c in columns if _CURSOR.search(c.lower())), None)
        cursor_line = (f'cursor_column = "{cursor}"   # by its name: check it grows at each change' if cursor
                       else '# cursor_column = "updated_at"   # grows at each change (or mode = "scan")')
        source = f'[source]\ntype = "sql"\nurl = "{args.sql}"\n{what}\nmode = "cursor"\n{cursor_line}'
        name = args.name or _slug(f"{kind.value.lower()}-{args.table or 'query'}")
        origin = f"{args.table or 'a query'} ({_hide_password(args.sql)})"
    text = draft_mapping(name=name, kind=kind, schema=packaged_schema(), source_toml=source,
                         columns=columns, rows=rows, key=args.key, origin=origin)
    mapping_path = out / f"{name}.toml"
    config_path = out / "td-connector.toml"
    written = [_write(mapping_path, text, args.force)]
    config = (f'# Written by td-connector init. Token: set TDC_TRACKDECHETS__TOKEN (never in this file).\n'
              f'[trackdechets]\nurl = "https://api.sandbox.trackdechets.beta.gouv.fr/"\n\n'
              f'[state]\ndir = "var"\n\n[mappings]\npaths = ["{mapping_path.name}"]\n')
    written.append(_write(config_path, config, args.force))
    for path, done in written:
        print(f"{'wrote' if done else 'kept (exists; --force to overwrite)'} {path}")
    print(f"next: edit {mapping_path.name} (fields set to \"TODO\"), then "
          f"td-connector check --offline -c {config_path}")
    return 0


def _write(path: Path, text: str, force: bool) -> tuple[Path, bool]:
    if path.exists() and not force:
        return path, False
    path.write_text(text, "utf-8")
    return path, True


def _relative(target: Path, base: Path) -> str:
    try:
        return str(target.relative_to(base)) or "."
    except ValueError:
        return str(target)


def _hide_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
