"""``storywriter``: run the service, mint a development token, try a completion, list providers.

For people trying the service: ``storywriter chat "Write a haiku"`` streams a completion to
the terminal through the same gateway the HTTP API uses (the embedded model when nothing else
is configured), and ``storywriter providers`` prints which providers and models answer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack

import orjson

from gateway.proxy_call import ChatCall
from providers.errors import ProviderError
from quart_app.auth import load_secret
from quart_app.auth import mint_token
from quart_app.config import ConfigError
from quart_app.config import Settings
from quart_app.wiring import build_services

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    from hypercorn.config import Config

    from quart_app.logs import configure_logging
    from quart_app.supervisor import serve

    try:
        server = Settings.load().server  # a broken configuration stops here, not in a loop
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(server.log_level, server.log_format)
    try:
        config = Config.from_toml(args.config)
    except OSError as error:
        print(f"cannot read {args.config}: {error.strerror}", file=sys.stderr)
        return 2
    if args.workers is not None:
        config.workers = args.workers
    if args.bind:
        config.bind = args.bind
    config.application_path = "quart_app:create_app()"
    return serve(config, server.metrics_multiprocess_dir)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    secret, _ = load_secret(settings.auth)
    print(mint_token(secret, args.user, ttl_s=args.ttl, roles=tuple(args.role)))
    return 0


async def _chat(args: argparse.Namespace, settings: Settings) -> int:
    async with AsyncExitStack() as stack:
        services = await build_services(settings, stack)
        call = ChatCall(
            request_id=uuid.uuid4().hex,
            user_id="cli",
            model=args.model,
            messages=[{"role": "user", "content": args.prompt}],
            max_tokens=args.max_tokens,
            params={"temperature": args.temperature},
            reasoning="think",
        )
        try:
            opened = await services.gateway.open_stream(call)
        except ProviderError as error:
            print(f"error: {error.message}", file=sys.stderr)
            return 1
        print(f"[{opened.provider} / {opened.model}]", file=sys.stderr)
        async for data in opened.body:
            for event in data.split(b"\n\n"):
                if not event.startswith(b"data: {"):
                    continue
                chunk = orjson.loads(event[6:])
                if "error" in chunk:
                    print(f"\nerror: {chunk['error']['message']}", file=sys.stderr)
                    return 1
                for choice in chunk.get("choices", []):
                    sys.stdout.write(choice.get("delta", {}).get("content") or "")
                    sys.stdout.flush()
                if chunk.get("usage"):
                    usage = chunk["usage"]
                    print(
                        f"\n[{usage['prompt_tokens']} prompt + {usage['completion_tokens']} "
                        f"completion tokens, {chunk['cost']['credits']} credits]",
                        file=sys.stderr,
                    )
    return 0


async def _providers(settings: Settings) -> int:
    healthy = True
    async with AsyncExitStack() as stack:
        services = await build_services(settings, stack)
        if not services.pool.members:
            print("no provider is configured or running", file=sys.stderr)
            return 1
        for member in services.pool.members:
            upstream = member.upstream
            started = time.monotonic()
            try:
                models = await upstream.probe()
                state = f"healthy ({(time.monotonic() - started) * 1000:.0f} ms)"
            except ProviderError as error:
                models, state, healthy = [], f"UNAVAILABLE: {error.message}", False
            print(f"{upstream.name:<16} {upstream.settings.kind:<18} {state}")
            print(f"  base_url: {upstream.settings.base_url}")
            print(f"  slots:    {member.slots.capacity}")
            for model in models:
                print(f"  model:    {model}")
    return 0 if healthy else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storywriter", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve with hypercorn's workers (hypercorn.toml), replacing any that dies"
    )
    serve.add_argument("--config", default="hypercorn.toml", help="hypercorn's TOML file")
    serve.add_argument("--workers", type=int, default=None, help="overrides `workers`")
    serve.add_argument("--bind", action="append", default=[], help="overrides `bind` (repeatable)")
    token = commands.add_parser("token", help="mint a JWT for a user with the configured secret")
    token.add_argument("user")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    token.add_argument(
        "--role", action="append", default=[], help="a role claim, e.g. admin (repeatable)"
    )
    chat = commands.add_parser("chat", help="stream a completion to the terminal")
    chat.add_argument("prompt")
    chat.add_argument("--model", default=None)
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.8)
    commands.add_parser("providers", help="list providers and models, and whether they answer")
    try:
        from credits.cli import register_commands

        register_commands(commands)
    except ImportError:  # pragma: no cover - the ledger ships with the service
        pass
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``storywriter`` command."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    try:
        settings = Settings.load()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "token":
        return _token(args, settings)
    if args.command == "chat":
        return asyncio.run(_chat(args, settings))
    if args.command == "providers":
        return asyncio.run(_providers(settings))
    from credits.cli import run_command

    return run_command(args, db_url=settings.credits.database_url)
