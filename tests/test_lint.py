"""The tree passes ruff with the project's rules (``[tool.ruff]`` in pyproject.toml): imports, pyflakes, bugbear."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.skipif(not RUFF.exists(), reason="ruff comes with the test extra: pip install -e '.[test]'")
def test_the_tree_is_lint_clean():
    done = subprocess.run([str(RUFF), "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-1000:]
