"""offgen_tools and offgen stay independent: neither imports the other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^\s*(?:from|import)\s+(offgen_tools|offgen)\b", re.MULTILINE)


def imported(package: Path) -> set[str]:
    return {m.group(1) for f in package.rglob("*.py") for m in IMPORT.finditer(f.read_text())}


def test_offgen_tools_never_imports_offgen() -> None:
    assert "offgen" not in imported(ROOT / "tools" / "offgen_tools")


def test_offgen_never_imports_offgen_tools() -> None:
    assert "offgen_tools" not in imported(ROOT / "offgen")
