"""``audit query --limit`` and ``audit tail -n`` take a positive count, on SQLite and JSONL alike.

``--limit -1`` used to mean "everything" on SQLite (``LIMIT -1``) and "all but
the last" on JSONL (a Python slice): the same command gave two answers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_guard.cli.main import main

from .test_audit_cli import populate

COUNTS = [["query", "--limit", "-1"], ["query", "--limit", "0"], ["tail", "-n", "-2"]]


@pytest.mark.parametrize("store", ["sqlite:///.mcp-guard/audit.db", "jsonl:///.mcp-guard/audit.jsonl"])
@pytest.mark.parametrize("argv", COUNTS)
def test_a_count_below_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str, argv: list[str]
) -> None:
    populate(tmp_path, [store])
    os.chdir(tmp_path)
    path = store.removeprefix("sqlite:///").removeprefix("jsonl:///")
    with pytest.raises(SystemExit) as exit_:
        main(["audit", argv[0], path, *argv[1:]])
    assert exit_.value.code == 2
    assert "must be a whole number of at least 1" in capsys.readouterr().err


def test_limit_keeps_the_oldest_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    os.chdir(tmp_path)
    assert main(["audit", "query", "--limit", "1", "--json"]) == 0
    assert '"seq": 1' in capsys.readouterr().out
