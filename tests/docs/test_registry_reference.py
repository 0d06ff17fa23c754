"""docs/registry.md and README.md against the code: every name documented, every example
valid, every command run.

Conventions of the documents, which these tests enforce:

- **Names.** Every aggregation (`transforms.spec.AGGREGATIONS`), expression function
  (`transforms.expressions.FUNCTIONS`), request type
  (`featurestore.registry.models.REQUEST_TYPES`) and key of every registry model (walked
  from `Registry` through `model_fields`, nested models and dict values included) appears
  in docs/registry.md in backticks, as itself or, for a function, as a call (`where(...)`).
- **YAML examples.** Every ```yaml block of docs/registry.md is a registry. A block with
  `project:` is a whole registry and is parsed as it is; any other block is a fragment
  (`feature_views:`, `sources:`, ...) whose definitions are added to `BASE_REGISTRY`
  (replacing any of the same name) before parsing. Parsing is
  `featurestore.registry.parse_registry`, which checks the file but reads no data, so
  source files need not exist. A block must parse without a problem, unless the line
  just before its fence is `<!-- invalid -->`: then it must fail, and when a ```text
  block follows it (blank lines aside), each line of that block must end one of the
  reported problems (fragments are re-laid out, so their lines and columns differ from
  the block's; the text block gives the path and the message).
- **Commands.** Every ```python block and every command of a ```sh, ```shell or
  ```console block (in console blocks, the lines starting with `$ `) of README.md and of
  docs/registry.md runs, in document order, in a fresh demo project (the repository's
  registry.yaml and 2,000 sample events over 90 days), one project per document. Shell
  commands run through the shell with the virtual environment's bin folder first on PATH;
  python blocks run as a script with the virtual environment's python; each must exit 0.
  Every command runs programs of `KNOWN_PROGRAMS` only (`featurestore`, `python`, and
  the shell's `cd` and `echo`; `NAME=value` assignments may come first, and `&&` or `;`
  may chain them), or is listed in `NOT_RUN` with the reason it cannot run here.
  `featurestore serve` and `featurestore ui` block, so each is started on a free port
  instead of the one written, must answer (GET /health for serve, GET / for ui; any
  status), and is then stopped.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from featurestore.errors import RegistryError
from featurestore.registry import Registry, parse_registry
from featurestore.registry.loader import load_yaml
from featurestore.registry.models import REQUEST_TYPES
from tests.projects import REPO, write_demo_project
from transforms.expressions import FUNCTIONS
from transforms.fitted_functions import FUNCTIONS as TRANSFORM_FUNCTIONS
from transforms.fitted_functions import IMPUTE_STRATEGIES
from transforms.spec import AGGREGATIONS

REFERENCE = REPO / "docs" / "registry.md"
README = REPO / "README.md"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)

INVALID_MARK = "<!-- invalid -->"
SHELL_LANGUAGES = ("sh", "shell", "console")

# Commands the documents show that a test cannot run, and why.
NOT_RUN = {
    "make demo": "creates the virtual environment and runs the whole demo on 200,000 events; "
    "the python block and the featurestore commands run the same steps here",
    "make test": "runs the whole test suite, this test included",
    "make clean": "deletes the virtual environment these commands run from",
}
SERVERS = {"featurestore serve": "/health", "featurestore ui": "/"}
"""Commands that run until stopped, and the path that answers once they are up."""
# What a documented command may run: the project's CLI and python, and the shell's own
# `cd` and `echo` (which writes an input file); chained with `&&` or `;`.
KNOWN_PROGRAMS = ("featurestore", "python", "cd", "echo")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")
_ENVIRONMENT_OVERRIDES = ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY")

COMMAND_TIMEOUT_S = 240.0
SERVE_START_TIMEOUT_S = 60.0

# Fragments are added to this registry. It holds what the fragments refer to: the user
# entity, the transactions source, the user_txn features that request views use and
# the request feature that services use. Its request view reads no feature view, so
# that a fragment redefining user_txn does not break it.
BASE_REGISTRY = """
project: reference
entities:
  user:
    keys: [user_id]
sources:
  transactions:
    path: data/transactions.parquet
    timestamp: event_ts
feature_views:
  user_txn:
    source: transactions
    entity: user
    features:
      txn_count_1h:    {agg: count, window: 1h}
      amount_sum_7d:   {agg: sum, expr: amount, window: 7d}
      amount_mean_30d: {agg: mean, expr: amount, window: 30d}
      amount_std_30d:  {agg: std, expr: amount, window: 30d}
      amount_max_1d:   {agg: max, expr: amount, window: 1d}
      last_category:   {agg: last, expr: merchant_category, window: 90d}
request_views:
  txn_context:
    request:
      amount_now: float64
    features:
      amount_z: "(amount_now - 50.0) / 20.0"
"""


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file.

    Attributes:
        language: the word after the opening fence ("" when none).
        text: the lines between the fences.
        line: 1-based line of the opening fence.
        invalid: the line before the fence is INVALID_MARK.
        expected: for an invalid block, the lines of the ```text block right after it.
    """

    language: str
    text: str
    line: int
    invalid: bool = False
    expected: tuple[str, ...] = ()


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order, with the invalid marks resolved."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[tuple[str, list[str], int, str]] = []
    index = 0
    while index < len(lines):
        opening = re.match(r"```(\w*)", lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and not lines[index].startswith("```"):
            index += 1
        before = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        found.append((opening.group(1), lines[start + 1 : index], start + 1, before))
        index += 1
    blocks = []
    for position, (language, body, line, before) in enumerate(found):
        invalid = before == INVALID_MARK
        following = found[position + 1] if position + 1 < len(found) else None
        expected: tuple[str, ...] = ()
        if invalid and following is not None and following[0] == "text" \
                and following[3] == "```":
            expected = tuple(item for item in following[1] if item.strip())
        blocks.append(Block(language, "\n".join(body) + "\n", line, invalid, expected))
    return blocks


def backticked(path: Path) -> set[str]:
    """Every `code span` of a Markdown file, fenced blocks left out."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return set(re.findall(r"`([^`\n]+)`", text))


def registry_keys(model: type[BaseModel] = Registry) -> set[str]:
    """Every key of a registry model and of the models nested in it, recursively."""
    keys: set[str] = set()
    seen: set[type[BaseModel]] = set()
    pending = [model]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, field in current.model_fields.items():
            keys.add(name)
            pending.extend(_models_in(field.annotation))
    return keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a type: itself, or in Annotated, unions, dicts, tuples."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (Union, types.UnionType, dict, list, tuple):
        return [model for arg in get_args(annotation) for model in _models_in(arg)]
    return []


# --- names --------------------------------------------------------------------------------


def _undocumented(names: Iterable[str]) -> list[str]:
    spans = backticked(REFERENCE)
    return [
        name for name in names
        if name not in spans and not any(span.startswith(f"{name}(") for span in spans)
    ]


def test_the_model_walk_finds_nested_keys() -> None:
    keys = registry_keys()
    # One key of each level: Registry, Store, Entity, Source, FeatureView, Feature, RequestView.
    assert {"project", "online", "keys", "timestamp", "entity", "agg", "request"} <= keys


def test_every_aggregation_is_documented() -> None:
    assert _undocumented(AGGREGATIONS) == []


def test_every_transform_function_and_strategy_is_documented() -> None:
    assert _undocumented([*TRANSFORM_FUNCTIONS, *IMPUTE_STRATEGIES]) == []


def test_every_expression_function_is_documented() -> None:
    assert _undocumented(FUNCTIONS) == []


def test_every_request_type_is_documented() -> None:
    assert _undocumented(REQUEST_TYPES) == []


def test_every_registry_key_is_documented() -> None:
    assert _undocumented(sorted(registry_keys())) == []


# --- YAML examples ------------------------------------------------------------------------


YAML_BLOCKS = [block for block in fenced_blocks(REFERENCE) if block.language == "yaml"]


def test_the_reference_has_a_whole_registry_and_invalid_examples() -> None:
    assert any("project" in (yaml.safe_load(block.text) or {}) for block in YAML_BLOCKS)
    assert any(block.invalid and block.expected for block in YAML_BLOCKS)


def registry_text(block: Block) -> str:
    """The registry a YAML block stands for: itself, or BASE_REGISTRY with it added."""
    document = load_yaml(block.text)
    assert document.problems == [], f"line {block.line}: {document.problems}"
    data = document.data
    assert isinstance(data, dict), f"line {block.line}: a YAML block must be a mapping"
    if "project" in data:
        return block.text
    merged: dict[str, Any] = yaml.safe_load(BASE_REGISTRY)
    for section, definitions in data.items():
        if isinstance(merged.get(section), dict) and isinstance(definitions, dict):
            merged[section] = {**merged[section], **definitions}
        else:
            merged[section] = definitions
    return yaml.safe_dump(merged, sort_keys=False)


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda block: f"line{block.line}")
def test_yaml_example(block: Block) -> None:
    text = registry_text(block)
    name = f"docs/registry.md (block at line {block.line})"
    if not block.invalid:
        try:
            parse_registry(text, name)
        except RegistryError as error:
            pytest.fail(f"the example at line {block.line} is invalid:\n{error}")
        return
    with pytest.raises(RegistryError) as raised:
        parse_registry(text, name)
    problems = raised.value.problems
    for line in block.expected:
        assert any(problem.endswith(line) for problem in problems), (
            f"line {block.line}: expected a problem ending in\n  {line}\ngot\n  "
            + "\n  ".join(problems)
        )


# --- commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One thing to run: a shell command or a python script, and where it is written."""

    kind: str  # "shell" or "python"
    text: str
    line: int


def steps_of(path: Path) -> list[Step]:
    """The python blocks and shell commands of a document, in order."""
    steps = []
    for block in fenced_blocks(path):
        if block.language == "python":
            steps.append(Step("python", block.text, block.line))
        elif block.language in SHELL_LANGUAGES:
            steps.extend(Step("shell", command, block.line)
                         for command in _commands(block.text, block.language == "console"))
    return steps


def _commands(text: str, console: bool) -> list[str]:
    """The commands of a shell block: every line (console: every `$ ` line), comment lines
    dropped and backslash continuations joined."""
    commands: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if console and not pending:
            if not raw.startswith("$ "):
                continue
            raw = raw[2:]
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def bare(command: str) -> str:
    """A command without its trailing comment."""
    return command.split(" #", 1)[0].strip()


def runs_known_programs(command: str) -> bool:
    """Whether every part of a command (split at `&&` and `;`) runs a KNOWN_PROGRAMS one."""
    for part in re.split(r"&&|;", command):
        words = [word for word in shlex.split(part) if _ASSIGNMENT.fullmatch(word) is None]
        if not words or words[0] not in KNOWN_PROGRAMS:
            return False
    return True


def test_every_documented_command_is_known() -> None:
    unknown = [
        f"{path.name}:{step.line}: {step.text}"
        for path in (README, REFERENCE)
        for step in steps_of(path)
        if step.kind == "shell" and bare(step.text) not in NOT_RUN
        and not runs_known_programs(bare(step.text))
    ]
    assert unknown == [], "commands this test does not know how to run"


def command_environment() -> dict[str, str]:
    """The environment commands run in: the venv first on PATH, no registry overrides."""
    env = {name: value for name, value in os.environ.items()
           if name not in _ENVIRONMENT_OVERRIDES}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_step(step: Step, project: Path, env: dict[str, str]) -> str | None:
    """Run one step in `project`; None when it succeeded, else what went wrong."""
    if step.kind == "python":
        script = project / f"block_line_{step.line}.py"
        script.write_text(step.text, encoding="utf-8")
        arguments: list[str] | str = [str(PYTHON), str(script)]
    elif server := next((name for name in SERVERS if bare(step.text).startswith(name)), None):
        return serve_and_stop(bare(step.text), project, env, SERVERS[server])
    else:
        arguments = step.text
    result = subprocess.run(arguments, shell=isinstance(arguments, str), cwd=project, env=env,
                            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if result.returncode == 0:
        return None
    return f"exit {result.returncode}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_and_stop(command: str, project: Path, env: dict[str, str],
                   probe: str = "/health") -> str | None:
    """Start a server command (`featurestore serve`, `featurestore ui`) on a free port,
    wait until GET `probe` answers (any status: a server without materialized data may
    say it is degraded), stop it."""
    port = free_port()
    arguments = [*shlex.split(re.sub(r"--port\s+\d+", "", command)), "--port", str(port)]
    log = project / f"serve_{port}.log"
    with log.open("w") as output:
        server = subprocess.Popen(arguments, cwd=project, env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.poll() is not None:
                return f"exit {server.returncode} before answering\n{log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2):
                    return None
            except urllib.error.HTTPError:
                return None
            except OSError:
                time.sleep(0.2)
        return f"no answer on {probe} within {SERVE_START_TIMEOUT_S:.0f}s"
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def run_document(path: Path, project: Path) -> list[str]:
    """Run every step of a document in order in a fresh demo project; return the failures."""
    write_demo_project(project, events=2_000, users=50, days=90)
    env = command_environment()
    failures = []
    for step in steps_of(path):
        if step.kind == "shell" and bare(step.text) in NOT_RUN:
            continue
        problem = run_step(step, project, env)
        if problem is not None:
            failures.append(f"{path.name}:{step.line}: {step.text.strip()}\n  {problem}")
    return failures


@pytest.mark.slow
def test_readme_commands_run(tmp_path: Path) -> None:
    failures = run_document(README, tmp_path / "readme")
    assert failures == [], "\n\n".join(failures)


@pytest.mark.slow
def test_reference_commands_run(tmp_path: Path) -> None:
    failures = run_document(REFERENCE, tmp_path / "reference")
    assert failures == [], "\n\n".join(failures)
