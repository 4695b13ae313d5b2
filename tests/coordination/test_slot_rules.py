"""The fairness rules of pool slots, identical in memory and in Redis (``make_slots``)."""

from __future__ import annotations

import asyncio

from coordination.slots.rules import SlotHold
from coordination.slots.rules import Slots
from tests.coordination.conftest import SlotsFactory
from tests.coordination.conftest import settle_background


def ticket(user: str, n: int = 0) -> str:
    return f"{n:032x}:{user}"


async def take(slots: Slots, user: str, ticket_id: str | None = None) -> SlotHold:
    got = await slots.try_acquire(user, ticket_id)
    assert isinstance(got, SlotHold), f"{user} was refused: {got}"
    return got


async def refused(slots: Slots, user: str, ticket_id: str | None = None) -> str:
    got = await slots.try_acquire(user, ticket_id)
    assert not isinstance(got, SlotHold), f"{user} got a slot"
    return got


async def give_back(slots: Slots, hold: SlotHold) -> None:
    slots.release(hold)
    await settle_background()


async def test_a_lone_user_may_take_every_slot(make_slots: SlotsFactory) -> None:
    slots = await make_slots(3)
    for _ in range(3):
        await take(slots, "alice")
    assert await refused(slots, "alice") == "busy"
    usage = await slots.usage()
    assert (usage.in_use, usage.capacity, usage.queue_length, usage.free) == (3, 3, 0, False)


async def test_max_user_share_caps_one_user(make_slots: SlotsFactory) -> None:
    slots = await make_slots(4, max_user_share=0.5)
    await take(slots, "alice")
    await take(slots, "alice")
    await refused(slots, "alice")
    await take(slots, "bob")
    assert (await slots.usage()).in_use == 3


async def test_the_last_slot_is_kept_for_a_waiting_user(make_slots: SlotsFactory) -> None:
    slots = await make_slots(2)
    first = await take(slots, "alice")
    await take(slots, "alice")  # alone: she may hold every slot
    await refused(slots, "bob")  # bob is turned away: he now counts as waiting
    await give_back(slots, first)
    await refused(slots, "alice")  # she holds one: the last free slot is bob's
    await take(slots, "bob")
    assert (await slots.usage()).in_use == 2


async def test_waiting_counts_only_for_the_fair_window(make_slots: SlotsFactory) -> None:
    slots = await make_slots(2, fair_window_s=0.2)
    first = await take(slots, "alice")
    await take(slots, "alice")
    await refused(slots, "bob")
    await give_back(slots, first)
    await asyncio.sleep(0.3)
    await take(slots, "alice")


async def test_waiting_requests_are_served_round_robin_across_users(
    make_slots: SlotsFactory,
) -> None:
    slots = await make_slots(1)
    holder = await take(slots, "xavier")
    order = [ticket("alice", 1), ticket("alice", 2), ticket("alice", 3)]
    order += [ticket("bob", 4), ticket("carol", 5)]
    for t in order:
        assert await refused(slots, t.split(":")[1], t) == "busy"
    assert (await slots.usage()).queue_length == 5
    served = []
    hold = holder
    for _ in range(5):
        await give_back(slots, hold)
        await refused(slots, "dave")  # an arrival never jumps the queue
        for t in reversed(order):  # ask in the worst order: only the right one may pass
            if t in served:
                continue
            got = await slots.try_acquire(t.split(":")[1], t)
            if isinstance(got, SlotHold):
                served.append(t)
                hold = got
                break
    names = [t.split(":")[1] + t[31] for t in served]
    assert names == ["alice1", "bob4", "carol5", "alice2", "alice3"]
    assert (await slots.usage()).queue_length == 0


async def test_the_queue_is_bounded(make_slots: SlotsFactory) -> None:
    slots = await make_slots(1, queue_max=2)
    await take(slots, "xavier")
    assert await refused(slots, "a", ticket("a", 1)) == "busy"
    assert await refused(slots, "b", ticket("b", 2)) == "busy"
    assert await refused(slots, "c", ticket("c", 3)) == "queue_full"
    assert await refused(slots, "a", ticket("a", 1)) == "busy"  # already queued


async def test_a_ticket_that_leaves_frees_the_queue(make_slots: SlotsFactory) -> None:
    slots = await make_slots(1)
    hold = await take(slots, "xavier")
    await refused(slots, "bob", ticket("bob", 1))
    slots.leave(ticket("bob", 1))
    await give_back(slots, hold)
    assert (await slots.usage()).queue_length == 0
    await take(slots, "dave")


async def test_capped_users_do_not_block_the_queue(make_slots: SlotsFactory) -> None:
    slots = await make_slots(2, max_user_share=0.5)
    await take(slots, "alice")
    xavier = await take(slots, "xavier")
    await refused(slots, "alice", ticket("alice", 1))  # capped: queued behind her own slot
    await refused(slots, "bob", ticket("bob", 2))
    await give_back(slots, xavier)
    # alice's ticket is first but she may not hold two: bob, behind her, is served.
    assert await refused(slots, "alice", ticket("alice", 1)) == "busy"
    await take(slots, "bob", ticket("bob", 2))
