"""`featurestore token create | list | revoke` and the auth line of `serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from featurestore.cli import main
from featurestore.cli.tokens import describe_auth
from tests.projects import write_demo_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A demo project (never applied); the working directory is its folder."""
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    directory = write_demo_project(tmp_path / "demo", events=100, users=5, days=2)
    monkeypatch.chdir(directory)
    return directory


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["token", *args])


def test_create_prints_the_token_alone_on_stdout_once(project: Path) -> None:
    created = run("create", "reader", "--scope", "read")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("fst_") and "\n" not in token
    assert "It will not be shown again" in created.stderr
    listed = run("list")
    assert listed.exit_code == 0 and token not in listed.output
    assert not any(token in path.read_bytes().decode("latin-1")
                   for path in project.rglob("*") if path.is_file())


def test_list_as_a_table_and_as_json_lines(project: Path) -> None:
    assert run("list").stdout == (
        "no tokens (create one with: featurestore token create NAME --scope read)\n")
    run("create", "reader", "--scope", "read")
    run("create", "pusher", "--scope", "push", "--scope", "read")
    assert run("revoke", "pusher").stdout == (
        "Revoked token 'pusher'; running servers refuse it within a few seconds.\n")
    title, reader, pusher = run("list").stdout.splitlines()
    assert title.split() == ["NAME", "SCOPES", "CREATED", "LAST", "USED", "STATUS"]
    assert reader.split()[:2] == ["reader", "read"] and reader.split()[-2:] == ["never", "active"]
    assert pusher.split()[:2] == ["pusher", "read,push"] and " revoked 20" in pusher
    lines = [json.loads(line) for line in run("list", "--json").stdout.splitlines()]
    assert [(line["name"], line["scopes"], line["status"], line["last_used"])
            for line in lines] == [("reader", ["read"], "active", None),
                                   ("pusher", ["read", "push"], "revoked", None)]
    assert set(lines[0]) == {"name", "scopes", "created", "last_used", "status", "revoked"}


@pytest.mark.parametrize(("args", "message"), [
    (("create", "reader", "--scope", "raed"),
     "error: unknown scope 'raed' (did you mean 'read'?); scopes: read, push, metrics"),
    (("create", "my-token", "--scope", "read"),
     "error: 'my-token' is not a valid token name: use letters, digits and underscores, "
     "not starting with a digit (at most 64)"),
    (("revoke", "reader"),
     "error: no token named 'reader': none was ever created "
     "(featurestore token create NAME --scope read)"),
])
def test_mistakes_are_one_line_and_exit_1(project: Path, args: tuple[str, ...],
                                          message: str) -> None:
    result = run(*args)
    assert (result.exit_code, result.stderr, result.stdout) == (1, message + "\n", "")


def test_revoke_suggests_the_name_meant_and_names_are_unique_while_active(
        project: Path) -> None:
    run("create", "reader", "--scope", "read")
    taken = run("create", "reader", "--scope", "push")
    assert taken.exit_code == 1 and taken.stderr == (
        "error: an active token named 'reader' exists: revoke it first "
        "(featurestore token revoke reader) or choose another name\n")
    typo = run("revoke", "raeder")
    assert typo.exit_code == 1 and typo.stderr == (
        "error: no active token named 'raeder' (did you mean 'reader'?)\n")


def test_a_scope_is_required(project: Path) -> None:
    result = run("create", "reader")
    assert result.exit_code == 2 and "Missing option '--scope'" in result.stderr


def test_the_auth_line_of_serve() -> None:
    assert describe_auth(True, 2) == "auth: on (bearer tokens, 2 active)"
    assert describe_auth(True, None, 50) == (
        "auth: on (bearer tokens); rate limit: 50 requests per second per token and process")
    assert describe_auth(False, None) == (
        "auth: off: anyone who can reach the port may read and push (turn it on with --auth "
        "or serving: {auth: true})")
