"""The operator commands against a real SQLite file.

These tests are synchronous on purpose: the commands run their own event loop, as they do
from a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from credits import Ledger
from credits.cli import main
from credits.cli import register_commands
from credits.cli import run_command
from tests.credits.helpers import usage

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="db_url")
def _db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ops' / 'credits.db'}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().out


def test_grant_then_balance(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(capsys, "--db", db_url, "grant", "alice", "250", "--note", "welcome")
    assert status == 0
    assert out == "alice: balance 250, reserved 0, available 250\n"
    status, out = _run(capsys, "--db", db_url, "grant", "alice", "-50", "--json")
    assert json.loads(out) == {
        "user": "alice",
        "granted": -50,
        "balance": 200,
        "reserved": 0,
        "available": 200,
    }
    status, out = _run(capsys, "--db", db_url, "balance", "alice")
    assert (status, out) == (0, "alice: balance 200, reserved 0, available 200\n")


def test_usage_lists_latest_requests(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def spend() -> None:
        async with await Ledger.open(db_url) as ledger:
            await ledger.grant("alice", 100)
            for n in range(3):
                await ledger.reserve("alice", 20, f"req-{n}")
                await ledger.settle(f"req-{n}", 10 + n, usage(f"req-{n}", completion_tokens=10 + n))

    asyncio.run(spend())
    status, out = _run(capsys, "--db", db_url, "usage", "alice", "--limit", "2")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 3  # header + 2 rows
    assert "req-2" in lines[1] and "req-1" in lines[2]
    status, out = _run(capsys, "--db", db_url, "usage", "alice", "--json")
    rows = json.loads(out)
    assert [row["credits"] for row in rows] == [12, 11, 10]
    assert {row["model"] for row in rows} == {"gpt-test"}
    status, out = _run(capsys, "--db", db_url, "usage", "nobody")
    assert (status, out) == (0, "no usage\n")


def test_reconcile(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(capsys, "--db", db_url, "reconcile", "--json")
    assert (status, json.loads(out)) == (0, {"expired": 0})


def test_errors_exit_nonzero(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", "mysql://root:hunter2@db/x", "balance", "alice"]) == 1
    err = capsys.readouterr().err
    assert "sqlite" in err and "hunter2" not in err
    assert main(["--db", db_url, "grant", "alice", "0"]) == 1
    with pytest.raises(SystemExit):
        main(["--db", db_url, "grant", "alice", "lots"])


def test_mounts_in_a_host_command_line(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    host = argparse.ArgumentParser(prog="storywriter")
    commands = host.add_subparsers(dest="command", required=True)
    commands.add_parser("serve")
    register_commands(commands)
    args = host.parse_args(["grant", "bob", "7"])
    assert run_command(args, db_url=db_url) == 0
    assert capsys.readouterr().out == "bob: balance 7, reserved 0, available 7\n"
    assert run_command(host.parse_args(["balance", "bob", "--db", db_url])) == 0
    assert capsys.readouterr().out == "bob: balance 7, reserved 0, available 7\n"
    assert run_command(host.parse_args(["balance", "bob"])) == 1  # no URL anywhere
    assert "no ledger URL" in capsys.readouterr().err


def test_db_option_after_the_subcommand(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "grant", "dave", "3", "--db", db_url)[0] == 0
    status, out = _run(capsys, "--db", db_url, "balance", "dave")
    assert (status, out) == (0, "dave: balance 3, reserved 0, available 3\n")


def test_python_dash_m(db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "credits", "--db", db_url, "grant", "carol", "5", "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout)["balance"] == 5
