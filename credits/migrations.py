"""Schema migrations for the ledger: an ordered list of steps and a `schema_version` table.

Every worker runs `migrate` when it opens the ledger. The whole run happens in one
transaction under the backend's migration lock (an advisory lock on PostgreSQL, the write
lock on SQLite), so workers starting together apply each step exactly once, and a step that
fails leaves the schema as it was. To change the schema, append a step; never edit one that
has shipped.

The DDL is shared by both databases: ``BIGINT`` and ``DOUBLE PRECISION`` get INTEGER and
REAL affinity in SQLite, and ``{id}`` is the one dialect-specific piece (the auto-increment
key). Credits are integers; timestamps are epoch seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from credits.backends import Database

__all__ = ["MIGRATIONS", "Migration", "migrate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step."""

    version: int
    """Position in the sequence, starting at 1 without gaps."""
    description: str
    """What the step does, for operators reading `schema_version`."""
    statements: tuple[str, ...]
    """DDL run in order; ``{id}`` becomes the backend's auto-increment key column."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "balances, reservations, transactions, usage_log",
        (
            """CREATE TABLE balances (
                user_id TEXT PRIMARY KEY,
                balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
                reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE reservations (
                request_id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                amount BIGINT NOT NULL CHECK (amount >= 0),
                status TEXT NOT NULL
                    CHECK (status IN ('pending', 'settled', 'released', 'expired')),
                charged BIGINT,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                closed_at DOUBLE PRECISION
            )""",
            """CREATE INDEX reservations_pending_expiry
                ON reservations (expires_at) WHERE status = 'pending'""",
            # Append-only. amount is the signed change to balance; request_id is set (and
            # unique) for charges, so no code path can charge one request twice.
            """CREATE TABLE transactions (
                id {id},
                user_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('grant', 'charge')),
                amount BIGINT NOT NULL,
                balance_after BIGINT NOT NULL,
                request_id TEXT UNIQUE,
                note TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX transactions_user ON transactions (user_id, created_at)",
            """CREATE TABLE usage_log (
                id {id},
                request_id TEXT NOT NULL UNIQUE,
                user_id TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL,
                credits BIGINT NOT NULL,
                duration_ms BIGINT NOT NULL,
                status TEXT NOT NULL,
                byok INTEGER NOT NULL DEFAULT 0,
                prompt_text TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX usage_log_user ON usage_log (user_id, created_at)",
        ),
    ),
    Migration(
        version=2,
        description="remember when a user received the one-time welcome credits",
        statements=("ALTER TABLE balances ADD COLUMN welcomed_at DOUBLE PRECISION",),
    ),
    Migration(
        version=3,
        description="keep the client's own request id on usage rows, for correlation only",
        statements=("ALTER TABLE usage_log ADD COLUMN correlation_id TEXT",),
    ),
)


async def migrate(db: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the schema up to date; safe to run from many workers at once.

    Args:
        db: The connected backend.
        migrations: The steps, in order (tests pass their own).

    Returns:
        The schema version after migrating.
    """
    async with db.migration_lock() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY,"
            " description TEXT NOT NULL,"
            " applied_at DOUBLE PRECISION NOT NULL)"
        )
        row = await tx.fetchrow("SELECT MAX(version) FROM schema_version")
        current = int(row[0]) if row is not None and row[0] is not None else 0
        for step in migrations:
            if step.version <= current:
                continue
            for statement in step.statements:
                await tx.execute(statement.replace("{id}", db.id_column))
            await tx.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)",
                step.version,
                step.description,
                time.time(),
            )
            logger.info("credit ledger schema migrated to version %d", step.version)
            current = step.version
        latest = migrations[-1].version if migrations else 0
        if current > latest:
            # A newer release migrated this database; steps are additive, so keep going.
            logger.warning(
                "credit ledger schema is version %d, newer than this code's %d", current, latest
            )
        return current
