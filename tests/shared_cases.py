"""Where the shared cases are (``shared/cases`` beside the project: real-world exports and
hostile inputs, each a test of its kind).

Beside a clone (``../shared/cases``), else ``RFTCOST_SHARED_CASES``, else the machine's
``/work/shared/cases``: a clone made elsewhere still runs these tests where the cases are
on the machine, instead of skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SHARED_CASES"]


def _shared_cases() -> Path:
    beside = Path(__file__).resolve().parents[2] / "shared" / "cases"
    named = os.environ.get("RFTCOST_SHARED_CASES")
    for candidate in (beside, Path(named) if named else None, Path("/work/shared/cases")):
        if candidate is not None and candidate.is_dir():
            return candidate
    return beside


SHARED_CASES = _shared_cases()
"""The shared cases' folder (which may be absent: the tests that need it then skip)."""
