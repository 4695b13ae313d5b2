"""The credit ledger: member requests reserve credits up front and settle what they used.

SQLite is the zero-configuration default; PostgreSQL, chosen by URL, serves several
workers or hosts. This package never imports quart: the service wires it in.

The service goes through ``credits.billing.LedgerBilling``: holds from per-user leases in
the worker's memory (``credits.leases``), settlements durable in a local journal
(``credits.journal``) and applied to the ledger in batches (``credits.writer``). The
`Ledger` below is the record those write to, and what tools and tests use directly.

Example:
    .. code-block:: python

        ledger = await Ledger.open("sqlite:///var/credits.db")
        estimate = estimate_reservation(prompt_tokens, max_tokens, multiplier)
        await ledger.reserve(user_id, estimate, request_id)  # InsufficientCredits -> 402
        try:
            ...  # stream the answer
        finally:
            used = credits_for(prompt_tokens, completion_tokens, multiplier)
            await ledger.settle(request_id, used, UsageRecord(...))
"""

from __future__ import annotations

from credits.errors import CreditsError
from credits.errors import DuplicateRequest
from credits.errors import InsufficientCredits
from credits.errors import ReservationNotFound
from credits.errors import UnsupportedDatabaseURL
from credits.ledger import Ledger
from credits.models import Balance
from credits.models import Reservation
from credits.models import UsageRecord
from credits.models import UsageStatus
from credits.pricing import credits_for
from credits.pricing import estimate_reservation
from credits.pricing import price
from credits.reconciler import reconcile_periodically

__all__ = [
    "Balance",
    "CreditsError",
    "DuplicateRequest",
    "InsufficientCredits",
    "Ledger",
    "Reservation",
    "ReservationNotFound",
    "UnsupportedDatabaseURL",
    "UsageRecord",
    "UsageStatus",
    "credits_for",
    "estimate_reservation",
    "price",
    "reconcile_periodically",
]
