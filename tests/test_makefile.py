"""The Makefile: `make clean` removes everything the demo writes; a missing Chromium gets a
one-line hint and never fails `make test`."""

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


def run_make_chromium(tmp_path: Path, present: tuple[str, ...]) -> subprocess.CompletedProcess:
    """`make chromium` with a PATH holding only `id` and fake `present` programs: no
    apt-get, so nothing is installed whoever runs the test."""
    make = shutil.which("make")
    assert make is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").symlink_to(shutil.which("id") or "/usr/bin/id")
    for name in present:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return subprocess.run([make, "--no-print-directory", "-f", str(REPO / "Makefile"),
                           "chromium"], cwd=tmp_path, env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("present", [(), ("chromium",), ("chromedriver",)])
def test_make_chromium_says_how_to_install_it_and_does_not_fail(
        tmp_path: Path, present: tuple[str, ...]) -> None:
    result = run_make_chromium(tmp_path, present)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "chromium or chromedriver not found: install them (Debian/Ubuntu: sudo apt-get install "
        "chromium chromium-driver); until then the browser tests are skipped"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_chromium_is_quiet_when_both_are_installed(tmp_path: Path) -> None:
    result = run_make_chromium(tmp_path, ("chromium", "chromedriver"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
