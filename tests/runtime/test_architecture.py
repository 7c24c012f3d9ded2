"""ARCHITECTURE.md matches the code: every file its walks name exists, and the import contracts hold."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_the_architecture_names_exists() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:bot|handlers|storage)/[\w/]+(?:\.py|/))`", text))
    assert len(named) > 30  # the walks name their files
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []


def test_the_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
