"""Operator commands: grant credits, inspect a balance and usage, reconcile holds.

Standalone: ``python -m credits --db URL grant alice 1000 --note "welcome"``. The service's
own command line mounts the same subcommands with `register_commands` and runs them with
`run_command`, passing the ledger URL from its settings, so there is one implementation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from credits.errors import CreditsError
from credits.ledger import Ledger

__all__ = ["build_parser", "main", "register_commands", "run_command"]

_Handler = Callable[[Ledger, argparse.Namespace], Awaitable[Any]]
_DB_HELP = "ledger URL: sqlite:///path/to/credits.db or postgresql://user@host:port/db"


async def _grant(ledger: Ledger, args: argparse.Namespace) -> dict[str, Any]:
    await ledger.grant(args.user, args.amount, args.note)
    return {"user": args.user, "granted": args.amount, **await _balance(ledger, args)}


async def _balance(ledger: Ledger, args: argparse.Namespace) -> dict[str, Any]:
    balance = await ledger.balance(args.user)
    return {
        "user": args.user,
        "balance": balance.balance,
        "reserved": balance.reserved,
        "available": balance.available,
    }


async def _usage(ledger: Ledger, args: argparse.Namespace) -> list[dict[str, Any]]:
    records = await ledger.recent_usage(args.user, args.limit)
    rows = [asdict(record) for record in records]
    for row in rows:
        row["created_at"] = row["created_at"].isoformat(timespec="seconds")
    return rows


async def _reconcile(ledger: Ledger, args: argparse.Namespace) -> dict[str, Any]:
    return {"expired": await ledger.reconcile_expired()}


def _as_text(command: str, result: Any) -> str:
    if command in ("grant", "balance"):
        text = "{user}: balance {balance}, reserved {reserved}, available {available}"
        return text.format(**result)
    if command == "reconcile":
        return f"expired {result['expired']} reservation(s)"
    if not result:
        return "no usage"
    lines = ["created_at  request_id  provider  model  prompt  completion  credits  ms  status"]
    for row in result:
        lines.append(
            "{created_at}  {request_id}  {provider}  {model}  {prompt_tokens}  "
            "{completion_tokens}  {credits}  {duration_ms}  {status}".format(**row)
            + ("  byok" if row["byok"] else "")
        )
    return "\n".join(lines)


def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``grant``, ``balance``, ``usage`` and ``reconcile`` to a command line.

    Args:
        subparsers: The result of ``parser.add_subparsers()`` of the host command line.
    """
    commands: list[tuple[str, str, _Handler]] = [
        ("grant", "add credits to a user (negative to remove)", _grant),
        ("balance", "show a user's balance, holds and available credits", _balance),
        ("usage", "show a user's latest requests", _usage),
        ("reconcile", "release holds of requests that never settled", _reconcile),
    ]
    for name, help_text, handler in commands:
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name != "reconcile":
            sub.add_argument("user", help="the user id (the JWT subject)")
        if name == "grant":
            sub.add_argument("amount", type=int, help="credits, an integer")
            sub.add_argument("--note", default=None, help="why, kept in the ledger")
        if name == "usage":
            sub.add_argument("--limit", type=int, default=20, help="rows to show (20)")
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")
        # SUPPRESS: an absent --db must not overwrite one given before the subcommand.
        sub.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
        sub.set_defaults(credits_command=name, credits_handler=handler)


def run_command(args: argparse.Namespace, *, db_url: str | None = None) -> int:
    """Run a parsed credits subcommand and print its result.

    Args:
        args: Parsed arguments from a parser that `register_commands` extended.
        db_url: The configured ledger URL; an explicit ``--db`` (``args.db``) wins over it.

    Returns:
        The process exit status: 0 on success, 1 on a ledger or usage error.
    """
    url = getattr(args, "db", None) or db_url
    if not url:
        print(f"error: no ledger URL (--db {_DB_HELP})", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(_with_ledger(url, args.credits_handler, args))
    except (CreditsError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_as_text(args.credits_command, result))
    return 0


async def _with_ledger(url: str, handler: _Handler, args: argparse.Namespace) -> Any:
    async with await Ledger.open(url) as ledger:
        return await handler(ledger, args)


def build_parser() -> argparse.ArgumentParser:
    """Build the standalone ``python -m credits`` parser."""
    parser = argparse.ArgumentParser(prog="python -m credits", description=__doc__)
    parser.add_argument("--db", default=argparse.SUPPRESS, help=_DB_HELP)
    register_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m credits``."""
    return run_command(build_parser().parse_args(argv))
