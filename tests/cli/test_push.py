"""`featurestore push SOURCE FILE`: Parquet, CSV and JSON lines into a demo project."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import click
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from featurestore import FeatureStore
from featurestore.cli import main
from tests.serving.conftest import DEMO_END, cli_environment, make_demo_store

AT = (DEMO_END + timedelta(minutes=30)).isoformat()
LOOKUP = {"features": ["user_txn:txn_count_1h", "user_txn:last_category"],
          "entities": {"user_id": [4, 5]}, "at": AT}
ROWS = [
    {"user_id": 4, "event_ts": (DEMO_END + timedelta(minutes=5)).isoformat(), "amount": 700.0,
     "merchant_category": "fuel"},
    {"user_id": 5, "event_ts": (DEMO_END + timedelta(minutes=6)).isoformat(), "amount": 12.5,
     "merchant_category": "grocery"},
]


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    """A materialized demo project on the local online store, built once: each test
    copies it, so that pushes do not meet each other."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
            patch.delenv(name, raising=False)
        store = make_demo_store(tmp_path_factory.mktemp("push-cli") / "demo", "local")
    yield store
    store.close()


@pytest.fixture
def project(materialized: FeatureStore, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the materialized demo project; the working directory is its folder."""
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    copy = tmp_path / "demo"
    subprocess.run(["cp", "-r", str(materialized.base_dir), str(copy)], check=True)
    monkeypatch.chdir(copy)
    return copy


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["push", *args], input=stdin)


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(row) for row in rows) + b"\n")
    return path


def segments(project: Path) -> list[Path]:
    return sorted((project / "data").rglob("pushed/**/*.parquet"))


def lookup(project: Path) -> dict[str, list[object]]:
    store = FeatureStore(project)
    try:
        return store.get_online_features(**LOOKUP)
    finally:
        store.close()


def expected_after(before: dict[str, list[object]]) -> dict[str, list[object]]:
    return {"user_id": [4, 5], "txn_count_1h": [n + 1 for n in before["txn_count_1h"]],
            "last_category": ["fuel", "grocery"]}


@pytest.mark.parametrize("name", ["new.jsonl", "new.ndjson", "new.json", "new.csv",
                                  "new.parquet"])
def test_each_format_reaches_lookups(project: Path, name: str) -> None:
    path = project / name
    if name.endswith(".csv"):
        pa_csv.write_csv(pa.Table.from_pylist(ROWS), path)
    elif name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(ROWS), path)
    else:
        write_jsonl(path, ROWS)
    before = lookup(project)
    result = run("transactions", name)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "pushed 2 rows to transactions; online store updated (2 entity states) (")
    assert lookup(project) == expected_after(before)
    assert len(segments(project)) == 1


def test_standard_input_takes_json_lines(project: Path) -> None:
    before = lookup(project)
    stdin = b"\n".join(orjson.dumps(row) for row in ROWS) + b"\n\n"  # blank lines skipped
    result = run("transactions", "-", stdin=stdin)
    assert result.exit_code == 0, result.output
    assert lookup(project) == expected_after(before)


BAD_PUSHES = [
    # (file name, its content, what the one-line error says: the row checks' own words
    # belong to the SDK's tests, these only show that they reach the shell)
    ("bad.jsonl", [ROWS[0], {**ROWS[1], "amount": "lots"}],
     ["error: push to 'transactions': ", "row 1", "'amount'", "'lots'",
      "(line 2 of bad.jsonl)"]),
    ("bad.jsonl", orjson.dumps(ROWS[0]) + b"\n\n" + orjson.dumps({**ROWS[1], "amount": "x"}),
     ["error: push to 'transactions': ", "row 1", "(line 3 of bad.jsonl)"]),
    ("bad.jsonl", [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "user_id"}],
     ["error: push to 'transactions': ", "'user_id'"]),
    ("bad.jsonl", b'{"user_id": 4}\n[1, 2]\n',
     ["error: bad.jsonl, line 2: expected one JSON object per line (JSON lines), "
      "got an array"]),
    ("bad.jsonl", b'{"user_id": 4}\n{"user_id": \n', ["error: bad.jsonl, line 2: not JSON ("]),
    ("bad.txt", b"", ["error: bad.txt: unknown file type '.txt': expected one of .parquet, "
                      ".pq, .csv, .jsonl, .ndjson, .json, or name the format with --format"]),
    ("bad.parquet", b"not parquet", ["error: bad.parquet is not readable Parquet: "]),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_PUSHES)
def test_a_bad_file_is_one_line_and_stores_nothing(project: Path, name: str,
                                                   content: list[dict[str, object]] | bytes,
                                                   message: list[str]) -> None:
    path = project / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write_jsonl(path, content)
    before = lookup(project)
    result = run("transactions", name)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message[0]), result.stderr
    assert all(part in result.stderr for part in message[1:]), result.stderr
    assert segments(project) == []
    assert lookup(project) == before


def test_unknown_source_and_missing_file(project: Path) -> None:
    write_jsonl(project / "new.jsonl", ROWS)
    result = run("transaction", "new.jsonl")
    assert (result.exit_code, result.stderr) == (
        1, "error: unknown source 'transaction' (did you mean 'transactions'?)\n")
    result = run("transactions", "nowhere.jsonl")
    assert (result.exit_code, result.stderr) == (1, "error: file not found: nowhere.jsonl\n")
    assert segments(project) == []


def test_format_option_overrides_the_name(project: Path) -> None:
    pa_csv.write_csv(pa.Table.from_pylist(ROWS), project / "events.txt")
    result = run("transactions", "events.txt", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert len(segments(project)) == 1


def test_before_any_materialization_the_rows_wait_for_it(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    store.close()
    monkeypatch.chdir(tmp_path / "demo")
    write_jsonl(tmp_path / "demo" / "new.jsonl", ROWS)
    result = run("transactions", "new.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "pushed 2 rows to transactions; online store not updated: nothing is materialized "
        "yet, the next `featurestore materialize` loads them (")
    assert len(segments(tmp_path / "demo")) == 1


def test_every_option_has_help() -> None:
    command = main.commands["push"]
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            assert parameter.help, parameter.name
    assert "SOURCE FILE" in CliRunner().invoke(main, ["push", "--help"]).stdout


def test_push_in_a_subprocess(project: Path) -> None:
    write_jsonl(project / "new.jsonl", ROWS)
    before = lookup(project)
    done = subprocess.run(
        [sys.executable, "-m", "featurestore", "push", "transactions", "new.jsonl",
         "--registry", str(project)],
        env=cli_environment(), cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pushed 2 rows to transactions; online store updated")
    assert lookup(project) == expected_after(before)


def test_a_row_error_names_its_place_in_each_format() -> None:
    from featurestore.cli.push import JsonLines, located_in_file

    lines = JsonLines()
    lines.extend([{}, {}])
    lines.line_numbers.extend([1, 4])
    message = "push to 'transactions': row 1: column 'amount' expects a number"
    assert located_in_file(message, lines, "jsonl", "a.jsonl").endswith("(line 4 of a.jsonl)")
    assert located_in_file(message, [], "csv", "a.csv").endswith(
        "(line 3 of a.csv, after its header)")
    assert located_in_file(message, [], "parquet", "a.parquet").endswith(
        "(row 2 of a.parquet, counting from 1)")
    assert located_in_file("no rows named", [], "csv", "a.csv") == "no rows named"
