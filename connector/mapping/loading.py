"""Read mapping files (TOML) and compile them, collecting the problems of every file at once.

Reading happens once at start; a refused mapping stops the daemon before anything is sent, with
one line per problem naming the file and the field.
"""

from __future__ import annotations

import difflib
import glob
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

from graphql import GraphQLSchema
from pydantic import ValidationError

from connector.errors import MappingError
from connector.mapping.compiler import CompiledMapping, compile_mapping
from connector.mapping.spec import MappingSpec, SimpleTransformName

__all__ = ["format_validation_error", "load_mapping", "load_mappings", "parse_mapping"]

_TRANSFORM_NAMES: tuple[str, ...] = (*get_args(SimpleTransformName), "map", "default")
_VALUE_TAGS = frozenset({"shorthand", "column", "const", "template", "lookup", "children", "items"})
_SKIPPED_TAGS = frozenset({"csv", "sql", "condition", "conditions"})
"""Union tags pydantic puts in error locations: not the user's words."""
_TRANSFORM_TAGS = frozenset({"simple", "date", "map", "default", "split"})


def parse_mapping(text: str, *, path: str) -> MappingSpec:
    """The spec in ``text``, or a MappingError listing every problem of the file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}", [f"{path}: not valid TOML: {exc}"]) from None
    try:
        return MappingSpec.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc, path)
        raise MappingError(f"{path}: {len(problems)} problem(s) in the mapping", problems) from None


def format_validation_error(exc: ValidationError, path: str) -> list[str]:
    """Pydantic's errors in the mapping's own words: ``file: fields."x".transforms[0]: reason``."""
    problems = []
    for error in exc.errors(include_url=False):
        location = _location(error["loc"])
        problems.append(f"{path}: {location}: {_reason(error)}")
    return list(dict.fromkeys(problems))


def _location(loc: tuple[Any, ...]) -> str:
    out: list[str] = []
    parts = list(loc)
    index = 0
    while index < len(parts):
        part = parts[index]
        previous = parts[index - 1] if index else None
        if previous == "fields" or (isinstance(previous, int) and out and out[-1].startswith("items")):
            out.append(f'"{part}"')
            # The next element is the union tag pydantic inserts: not the user's words.
            if index + 1 < len(parts) and parts[index + 1] in _VALUE_TAGS:
                index += 1
        elif isinstance(part, int):
            out[-1] = f"{out[-1]}[{part}]" if out else f"[{part}]"
            if previous == "transforms" and index + 1 < len(parts) and parts[index + 1] in _TRANSFORM_TAGS:
                index += 1
        elif part in ("tagged-union[CsvSourceSpec,SqlSourceSpec]",) or part in _SKIPPED_TAGS:
            pass
        else:
            out.append(str(part))
        index += 1
    return ".".join(out) or "(file)"


def _reason(error: Any) -> str:
    kind = error["type"]
    value = error.get("input")
    loc = error["loc"]
    in_transforms = "transforms" in loc
    if in_transforms and kind in ("literal_error", "union_tag_invalid"):
        name = value if isinstance(value, str) else (value or {}).get("name")
        guess = difflib.get_close_matches(str(name), _TRANSFORM_NAMES, n=1)
        hint = f' (did you mean "{guess[0]}"?)' if guess else ""
        return f'unknown transform "{name}"{hint}; valid: {", ".join(_TRANSFORM_NAMES)}'
    if kind == "union_tag_not_found" and isinstance(value, dict):
        found = ", ".join(sorted(value)) or "none"
        return f"needs one of column, const, template, lookup, children, items (found keys: {found})"
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind == "missing":
        return "is required"
    return str(error["msg"])


def load_mapping(path: str | Path, schema: GraphQLSchema) -> CompiledMapping:
    """Read, validate and compile one mapping file."""
    path = Path(path)
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{display}: cannot read: {exc.strerror}",
                           [f"{display}: cannot read: {exc.strerror}"]) from None
    return compile_mapping(parse_mapping(text, path=display), schema, path=display)


def load_mappings(paths_or_globs: Iterable[str], schema: GraphQLSchema,
                  base_dir: str | Path = ".") -> list[CompiledMapping]:
    """Every mapping matched, or one MappingError with the problems of all the files."""
    base = Path(base_dir)
    files: list[Path] = []
    problems: list[str] = []
    for pattern in paths_or_globs:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(Path(p) for p in glob.glob(full))
        if not matches:
            problems.append(f"{pattern}: no mapping file matches")
        files += [m for m in matches if m not in files]
    compiled: list[CompiledMapping] = []
    names: dict[str, str] = {}
    for file in files:
        try:
            mapping = load_mapping(file, schema)
        except MappingError as exc:
            problems += exc.problems
            continue
        if mapping.name in names:
            problems.append(f'{file}: name: "{mapping.name}" is already used by {names[mapping.name]}')
        names[mapping.name] = str(file)
        compiled.append(mapping)
    if problems:
        raise MappingError(f"{len(problems)} problem(s) in the mappings", problems)
    return compiled
