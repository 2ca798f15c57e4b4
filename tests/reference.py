"""Where the reference material and the project's own copies of its facts live, for tests.

``../shared/trackdechets`` is read only by the tests comparing the committed copies with it; every
other test uses the copies, so the suite passes on a fresh clone with nothing beside it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()
SKIP_REASON = "reference material ../shared/trackdechets not found; the committed copy is used"
EMULATOR_WASTE_CODES = ROOT / "td_emulator" / "data" / "waste_codes.json"
"""The emulator's own copy of the waste-code nomenclature (its membership checks)."""


def shared_trackdechets() -> Path:
    """``../shared/trackdechets``, or skip the calling test with the reason."""
    folder = SHARED / "trackdechets"
    if not (folder / "schema.graphql").exists():
        pytest.skip(SKIP_REASON)
    return folder
