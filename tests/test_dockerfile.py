"""The Dockerfile, checked without Docker: hadolint's rules, then what the image needs.

Docker cannot run where the tests run, so the image is not built here; these checks
catch what usually breaks one: a COPY of a file that is missing or excluded by
.dockerignore, a package install that lacks a file pyproject.toml names, a root user,
no health check.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
# Every instruction of the Dockerfile reference.
INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
                "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
                "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def hadolint() -> str:
    # The dev extras install it beside the interpreter, which need not be on PATH.
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the dev extras (pip install -e '.[dev]')",
                    pytrace=False)
    return found


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_instructions_make_a_server_image() -> None:
    steps = instructions()
    assert {keyword for keyword, _ in steps} <= INSTRUCTIONS
    keywords = [keyword for keyword, _ in steps]
    assert keywords[0] == "FROM" and steps[0][1] == "python:3.12-slim"
    arguments = dict(steps)  # the last of each kind
    users = [value for keyword, value in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    # Exec form (a JSON array): the server is PID 1 and gets SIGTERM itself, where the
    # shell form would run it under a shell that does not pass the signal on.
    command = json.loads(arguments["CMD"])
    assert command[:2] == ["featurestore", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert "/health" in arguments["HEALTHCHECK"] and "CMD" in arguments["HEALTHCHECK"]
    port = command[command.index("--port") + 1]
    assert arguments["EXPOSE"] == port and f":{port}/health" in arguments["HEALTHCHECK"]
    assert any(keyword == "RUN" and "pip install" in value and " ." in value
               for keyword, value in steps)


def copied_sources() -> list[str]:
    sources: list[str] = []
    for keyword, value in instructions():
        if keyword == "COPY":
            *names, _destination = [part for part in value.split() if not part.startswith("--")]
            sources.extend(name.rstrip("/") for name in names)
    return sources


def test_copied_files_exist_and_are_in_the_build_context() -> None:
    kept = [line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.startswith("!")]
    sources = copied_sources()
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert any(fnmatch.fnmatch(source, pattern) for pattern in kept), (
            f"COPY {source}: excluded by .dockerignore")


def test_the_copied_files_are_what_the_package_install_reads() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    sources = set(copied_sources())
    assert {"pyproject.toml", project["project"]["readme"]} <= sources
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*").rstrip(".") for pattern in packages} <= sources
