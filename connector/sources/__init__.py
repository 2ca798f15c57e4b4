"""Where records come from: CSV drop folders and SQL tables, behind one :class:`Source` protocol."""

from __future__ import annotations

from pathlib import Path

from connector.sources.base import RowProblem, Source, SourceBatch, SourceRecord, WriteBack
from connector.sources.csv_folder import CsvFolderSource, SkippedFile
from connector.sources.specs import CsvSourceSpec, SqlSourceSpec

__all__ = [
    "CsvFolderSource",
    "RowProblem",
    "SkippedFile",
    "Source",
    "SourceBatch",
    "SourceRecord",
    "SqlSource",
    "WriteBack",
    "open_source",
]


def open_source(spec: CsvSourceSpec | SqlSourceSpec, *, base_dir: Path, mapping_name: str,
                state_dir: Path) -> Source:
    """Build the source a mapping's ``[source]`` section describes.

    ``base_dir`` resolves relative folders (the mapping file's folder); ``state_dir`` holds side
    files too large for a checkpoint (scan-mode hashes).
    """
    if isinstance(spec, CsvSourceSpec):
        return CsvFolderSource(spec, base_dir=base_dir, mapping_name=mapping_name)
    from connector.sources.sql_source import SqlSource

    return SqlSource(spec, mapping_name=mapping_name, state_dir=state_dir, base_dir=base_dir)


def __getattr__(name: str) -> object:
    # SqlSource pulls in SQLAlchemy; keep ``import connector.sources`` light for CSV-only use.
    if name == "SqlSource":
        from connector.sources.sql_source import SqlSource

        return SqlSource
    raise AttributeError(name)
