"""`featurestore demo`: its online half (materialize, lookups, push, verify) runs and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore.cli import main
from tests.projects import DEMO_TEXT


def test_the_demo_runs_the_online_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "registry.yaml").write_text(DEMO_TEXT)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--events", "4000", "--users", "50",
                                       "--days", "30"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    step = {line.split("]")[0] + "]": index for index, line in enumerate(lines)
            if line.startswith("[")}
    assert list(step)[-5:] == ["[5/9]", "[6/9]", "[7/9]", "[8/9]", "[9/9]"]
    assert lines[step["[5/9]"]] == "[5/9] Materialize events before 2024-01-31T00:00:00+00:00:"
    lookup = lines[step["[6/9]"] + 1 : step["[7/9]"]]
    assert lookup[0].split() == ["user_id", "amount_sum_7d", "txn_count_1h", "amount_z",
                                 "last_category"]
    assert [row.split()[0] for row in lookup[1:]] == ["1", "2", "3"]
    pushed = lines[step["[7/9]"] + 1 : step["[8/9]"]]
    assert pushed[0].startswith("      pushed 1 row (online store updated)")
    counts = dict(line.split(None, 1) for line in pushed[1:])
    before, after = counts["txn_count_1h"].split(" -> ")
    assert int(after) == int(before) + 1
    assert counts["last_category"].endswith("-> electronics")
    # All 50 users are sampled but user 1, whose state is ahead by the pushed event.
    verified = lines[step["[8/9]"] + 1 : step["[9/9]"]]
    assert verified[-2:] == [
        "      user_txn: 49 entities at 6 times (1 with events not yet materialized left out)",
        f"      online == offline for all {49 * 6 * 15:,} values"]
    fitted = lines[step["[9/9]"] + 1 :]
    assert fitted[0].startswith("      fit ") and ": fitted, 20,000 rows" in fitted[0]
    assert any(line.startswith("      user 2 at 2024-01-31T00:02:00+00:00, fit ")
               for line in fitted)
    assert any(line.startswith("        one-hot            ") for line in fitted)
    assert fitted[-1] == ("        the transformed training set of the same user and time: "
                          "equal, value for value")
