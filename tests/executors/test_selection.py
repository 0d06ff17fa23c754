"""Choosing the engine: per call, then FEATURESTORE_ENGINE, then the registry's
store.engine, then local; malformed settings name where they came from."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from featurestore import FeatureStore
from featurestore.errors import EngineError, InputError, RegistryError
from featurestore.executors import ENGINE_ENV, LocalExecutor, open_executor, resolve_engine
from featurestore.executors import dask as dask_executor
from featurestore.executors.engines import engine_problem, scheduler_address
from featurestore.registry.validation import parse_registry
from tests.projects import DEMO_TEXT, REPO, write_demo_project

DASK_A = "dask://127.0.0.1:8786"
DASK_B = "dask://10.0.0.5:9000"


@pytest.fixture(autouse=True)
def _no_engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)


def test_default_is_local() -> None:
    setting = resolve_engine(None)
    assert (setting.value, setting.is_local) == ("local", True)


def test_registry_then_environment_then_call_win_in_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_engine(None, DASK_A).value == DASK_A
    monkeypatch.setenv(ENGINE_ENV, DASK_B)
    assert resolve_engine(None, DASK_A).value == DASK_B
    assert resolve_engine(None, "local").value == DASK_B
    assert resolve_engine("local", DASK_A).value == "local"
    assert resolve_engine(DASK_A, "local").origin == "the engine argument"


def test_an_empty_environment_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "")
    assert resolve_engine(None, DASK_A).value == DASK_A


@pytest.mark.parametrize("value", [
    "dask", "dask://", "dask://:8786", "dask://host", "dask://host:99999",
    "dask://host:0", "dask://host:port", "dask://host:8786/path", "tcp://host:8786",
    "ray://host:10001", "Local", "",
])  # fmt: skip
def test_malformed_settings_are_refused(value: str) -> None:
    assert engine_problem(value) is not None
    with pytest.raises(InputError, match=r"the engine argument.*dask://host:port"):
        resolve_engine(value)


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "dask://nowhere")
    with pytest.raises(InputError, match=f"{ENGINE_ENV}: .*no port"):
        resolve_engine(None)


def test_good_settings_give_scheduler_addresses() -> None:
    assert engine_problem(DASK_A) is None
    assert scheduler_address(DASK_A) == "tcp://127.0.0.1:8786"
    assert scheduler_address("dask://[::1]:8786") == "tcp://[::1]:8786"
    assert scheduler_address("dask://sched.internal:8786/") == "tcp://sched.internal:8786"


def test_the_registry_validates_store_engine() -> None:
    text = DEMO_TEXT.replace("  online: local", "  online: local\n  engine: dask://host")
    with pytest.raises(RegistryError, match=r"store\.engine.*no port"):
        parse_registry(text)
    good = DEMO_TEXT.replace("  online: local", f"  online: local\n  engine: {DASK_A}")
    assert parse_registry(good).store.engine == DASK_A


def test_store_calls_take_the_registry_engine(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry naming an unreachable scheduler fails every partitioned call with the
    address; a per-call local engine wins over it."""
    # Dask keeps trying to connect until its timeout: a short one keeps the test short.
    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT_S", 1.0)
    port = _closed_port()
    text = DEMO_TEXT.replace("  online: local",
                             f"  online: local\n  engine: dask://127.0.0.1:{port}")
    store = FeatureStore(write_demo_project(tmp_path / "p", text=text, events=200, users=5))
    spine = pd.DataFrame({"user_id": [1], "event_ts": [pd.Timestamp("2024-01-10")]})
    with pytest.raises(EngineError, match=f"127.0.0.1:{port}.*store.engine"):
        store.get_training_set(spine, features=["user_txn:amount_sum_7d"])
    local = store.get_training_set(spine, features=["user_txn:amount_sum_7d"], engine="local")
    assert local.shape == (1, 3)


def test_local_executor_runs_tasks_in_order() -> None:
    executor = open_executor(resolve_engine("local"))
    assert isinstance(executor, LocalExecutor) and not executor.remote
    assert executor.run([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]


def test_a_dask_engine_without_dask_installed_says_what_to_install() -> None:
    script = (
        "import sys; sys.modules['distributed'] = None\n"
        "from featurestore.errors import EngineError\n"
        "from featurestore.executors import open_executor, resolve_engine\n"
        "try:\n"
        f"    open_executor(resolve_engine({DASK_A!r}))\n"
        "except EngineError as error:\n"
        "    print(error)\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           cwd=REPO, check=True).stdout
    assert "pip install 'featurestore[dask]'" in shown
    assert DASK_A in shown


def test_local_runs_never_import_dask() -> None:
    script = (
        "import sys\n"
        "from featurestore import FeatureStore\n"
        "from featurestore.executors import open_executor, resolve_engine\n"
        "open_executor(resolve_engine(None))\n"
        "print('distributed' in sys.modules)\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           cwd=REPO, check=True).stdout
    assert shown.strip() == "False"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
