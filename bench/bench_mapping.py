"""Records per second through ``CompiledMapping.apply`` alone, and the lookup re-evaluation.

Two mappings on their sample rows repeated: ``mappings/bsdd_csv.toml`` (no conditions, rules or
lookups: what every mapping pays for the new syntax being there) and ``mappings/bsdd_erp_csv.toml``
(six rules, conditions, eleven lookup fields). CPU time (the machine is shared), best of five runs.

    .venv/bin/python bench/bench_mapping.py --records 20000
"""

from __future__ import annotations

import argparse
import csv
import time
from datetime import UTC, datetime
from pathlib import Path

from connector.mapping import load_mapping
from connector.sources.base import SourceRecord
from connector.sources.lookups import load_lookups
from connector.trackdechets.schema import packaged_schema

ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = ROOT / "mappings"


def records(data: str, key: str, count: int) -> list[SourceRecord]:
    with (MAPPINGS / "data" / data).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return [SourceRecord(key=f"{i}", values={**rows[i % len(rows)], key: str(i)}, origin="bench")
            for i in range(count)]


def rate(name: str, data: str, key: str, count: int) -> float:
    mapping = load_mapping(MAPPINGS / name, packaged_schema())
    if mapping.spec.lookups:
        mapping = mapping.with_tables(load_lookups(mapping.spec.lookups, base_dir=MAPPINGS))
    sample = records(data, key, count)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for record in sample:
            mapping.apply(record, now=now)
        best = min(best, time.process_time() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    plain = rate("bsdd_csv.toml", "bsdd_enlevements.csv", "n_bon", args.records)
    erp = rate("bsdd_erp_csv.toml", "erp_bons.csv", "id_bon", args.records)
    print(f"bsdd_csv.toml (no conditions/rules/lookups): {plain:,.0f} records/s")
    print(f"bsdd_erp_csv.toml (rules, conditions, lookups): {erp:,.0f} records/s")


if __name__ == "__main__":
    main()
