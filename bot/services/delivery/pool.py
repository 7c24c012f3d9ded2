"""The delivery ledger's small thread pool: items stepped on a few threads, each step free to ask to run again
after a delay (a channel's spacing, a 429's Retry-After) without holding a thread, and new work claimed in batches
just ahead of the threads that post it. No database and no Slack here: posting.py supplies the steps."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")


def dispatch(
    items: Sequence[Item],
    step: Callable[[Item], float | None],
    *,
    workers: int,
    more: Iterable[Sequence[Item]] = (),
    prepare: Callable[[list[Item]], Sequence[Item]] | None = None,
    batch_size: int = 1,
    claimers: int = 2,
) -> None:
    """Run `step` over `items`, and the batches `more` yields as they come, on `workers` threads. A step returns
    None when its item is done, or a delay in seconds after which the item runs again (it waits in the queue,
    not on a thread). The first exception, a simulated crash included, stops every thread from taking more
    work and is raised here.

    With `prepare`, new items are first handed to it `batch_size` at a time (at most `claimers` batches at once)
    and only the items it returns go on to `step`. Items ready for `step` come first: a new batch is taken only
    while fewer than `batch_size` are waiting for a thread, so little is prepared far ahead of its step.
    """
    counter = itertools.count()
    fresh: deque[Item] = deque(items)
    ready: deque[Item] = deque()  # due now, oldest first
    later: list[tuple[float, int, Item]] = []  # due after a delay (a channel's spacing, a 429's Retry-After)
    cond = threading.Condition()
    state: dict[str, Any] = {"active": 0, "error": None, "feeding": True, "preparing": 0}
    size = max(1, batch_size) if prepare is not None else 1

    def feed() -> None:
        try:
            for batch in more:
                with cond:
                    if state["error"] is not None:
                        return
                    fresh.extend(batch)
                    cond.notify(min(workers, len(batch)))
        except BaseException as exc:  # re-raised in the caller's thread
            with cond:
                state["error"] = state["error"] or exc
        finally:
            with cond:
                state["feeding"] = False
                cond.notify_all()

    def take() -> tuple[str, list[Item]] | None:
        """The next work, under `cond`: ("step", [item]) or ("prepare", items); None when all is done."""
        while True:
            if state["error"] is not None:
                return None
            now = time.monotonic()
            while later and later[0][0] <= now:
                ready.append(heapq.heappop(later)[2])
            if ready:
                return "step", [ready.popleft()]
            if fresh and (prepare is None or (state["preparing"] < claimers and len(ready) < size)):
                taken = [fresh.popleft() for _ in range(min(size, len(fresh)))]
                if prepare is None:
                    return "step", taken
                state["preparing"] += 1
                return "prepare", taken
            if not fresh and not later and state["active"] == 0 and not state["feeding"]:
                cond.notify_all()
                return None
            cond.wait(later[0][0] - now if later else None)

    def worker() -> None:
        while True:
            with cond:
                work = take()
                if work is None:
                    return
                state["active"] += 1
            kind, taken = work
            try:
                if kind == "prepare":
                    assert prepare is not None
                    follow, again = list(prepare(taken)), None
                else:
                    follow, again = [], step(taken[0])
            except BaseException as exc:  # re-raised in the caller's thread
                with cond:
                    state["error"] = state["error"] or exc
                    state["active"] -= 1
                    cond.notify_all()
                return
            # This thread goes straight back to take(), so it only wakes others for work it cannot do alone
            # (waking all of them after every post costs more than the post): a prepared batch. The end of the
            # work is seen by whoever takes last, which wakes everyone to leave.
            with cond:
                state["active"] -= 1
                if kind == "prepare":
                    state["preparing"] -= 1
                    ready.extend(follow)
                    cond.notify(max(1, len(follow)))
                elif again is not None:
                    heapq.heappush(later, (time.monotonic() + again, next(counter), taken[0]))

    feeder = threading.Thread(target=feed, name="deliver-plan", daemon=True)
    feeder.start()
    threads = [
        threading.Thread(target=worker, name=f"deliver-{i}", daemon=True) for i in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    feeder.join()
    if state["error"] is not None:
        raise state["error"]
