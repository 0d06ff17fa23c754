"""`make clean` removes everything the demo writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_removes_what_the_demo_writes(tmp_path: Path) -> None:
    for name in ("Makefile", "registry.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FEATURESTORE_REGISTRY", None)
    demo = subprocess.run([sys.executable, "-m", "featurestore", "demo", "--events", "3000",
                           "--users", "30"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert demo.returncode == 0, demo.stderr
    written = {path.relative_to(tmp_path).parts[0] for path in tmp_path.rglob("*")}
    assert "data" in written
    clean = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60, check=False)
    assert clean.returncode == 0, clean.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Makefile", "registry.yaml"]
