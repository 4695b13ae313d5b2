"""Concurrency slots of the pool's upstreams: the rules, and where slots are counted.

``rules`` states them (and the ``Slots`` protocol the pool uses); ``local`` counts in this
process, ``host`` adds host-wide file locks for an upstream each host runs itself (the
embedded model), ``shared`` counts in Redis for every worker and host; ``fair_queue`` takes
a slot from a model's candidates, waiting in a fair queue when the deployment allows it.
"""

from coordination.slots.fair_queue import take_slot
from coordination.slots.host import HostSlots
from coordination.slots.local import LocalSlots
from coordination.slots.rules import ChangeSignal
from coordination.slots.rules import Refusal
from coordination.slots.rules import SlotHold
from coordination.slots.rules import Slots
from coordination.slots.rules import SlotUsage
from coordination.slots.rules import user_slot_cap

__all__ = [
    "ChangeSignal",
    "HostSlots",
    "LocalSlots",
    "Refusal",
    "SlotHold",
    "SlotUsage",
    "Slots",
    "take_slot",
    "user_slot_cap",
]
