"""SharedReads: requests that arrive together share a read, and never get one that began before they asked."""

from __future__ import annotations

import threading
import time

import pytest

from bot.services.shared_reads import SharedReads


def test_a_lone_caller_reads_for_itself_and_the_state_is_let_go() -> None:
    reads: SharedReads[int] = SharedReads()
    assert reads.read("m1", lambda: 41) == 41
    assert reads.read("m1", lambda: 42) == 42  # a later request reads again: nothing is kept between requests
    assert reads.reads == 2 and reads._keys == {}


def test_callers_arriving_during_a_read_share_the_next_one_begun_after_they_asked() -> None:
    reads: SharedReads[int] = SharedReads()
    started = threading.Event()
    release = threading.Event()
    versions = iter(range(1, 100))
    began: list[int] = []

    def slow() -> int:
        version = next(versions)
        began.append(version)
        if version == 1:
            started.set()
            assert release.wait(5)
        return version

    results: dict[str, int] = {}
    first = threading.Thread(target=lambda: results.__setitem__("first", reads.read("m1", slow)))
    first.start()
    assert started.wait(5)
    # Nine more ask while read 1 is running: read 1 began before they asked, so it must not serve them.
    late = [
        threading.Thread(target=lambda i=i: results.__setitem__(f"late{i}", reads.read("m1", slow)))
        for i in range(9)
    ]
    for thread in late:
        thread.start()
    time.sleep(0.1)  # let them all ask
    release.set()
    for thread in [first, *late]:
        thread.join(5)
    assert results["first"] == 1
    assert {results[f"late{i}"] for i in range(9)} == {2}  # one more read, shared by all nine
    assert began == [1, 2] and reads.reads == 2


def test_different_keys_do_not_wait_for_each_other() -> None:
    reads: SharedReads[str] = SharedReads()
    release = threading.Event()
    out: list[str] = []
    blocked = threading.Thread(target=lambda: out.append(reads.read("a", lambda: release.wait(5) and "a")))
    blocked.start()
    time.sleep(0.05)
    assert reads.read("b", lambda: "b") == "b"  # not held up by "a"
    release.set()
    blocked.join(5)
    assert out == ["a"]


def test_a_failed_read_is_raised_to_its_caller_and_a_waiter_reads_again() -> None:
    reads: SharedReads[int] = SharedReads()
    started = threading.Event()
    release = threading.Event()

    def failing() -> int:
        started.set()
        assert release.wait(5)
        raise RuntimeError("database gone")

    errors: list[BaseException] = []

    def first() -> None:
        try:
            reads.read("m1", failing)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(5)
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(reads.read("m1", lambda: 7)))
    waiter.start()
    time.sleep(0.05)
    release.set()
    thread.join(5)
    waiter.join(5)
    assert [str(e) for e in errors] == ["database gone"] and got == [7]
    assert reads._keys == {}


def test_equity_shares_a_measures_read_between_requests_arriving_together(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the service: ten look-ups of one measure at once read its rows at most twice, and each gets a
    frame of its own with every row."""
    from datetime import date

    from bot.services import equity
    from storage import measures_repo
    from storage.db import make_engine
    from tests.services.helpers import CHANNEL, TEAM, make_measure, make_project

    engine = make_engine(database_url)
    rows = [(date(2026, 1, 5), g, 10, 100) for g in ("A", "N", "M")]
    make_measure(engine, make_project(engine), rows=rows)

    real = measures_repo.data_table
    calls: list[int] = []
    gate = threading.Barrier(10)

    def counted(session, *, measure_id):  # type: ignore[no-untyped-def]
        calls.append(measure_id)
        if len(calls) == 1:  # the first read runs until the other nine have asked (a slow read)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                state = equity._DATA_READS._keys.get(measure_id)
                if state is not None and state.asked >= 10:
                    break
                time.sleep(0.01)
        return real(session, measure_id=measure_id)

    monkeypatch.setattr(measures_repo, "data_table", counted)
    frames: list[object] = []  # kept alive, so their ids stay distinct

    def one() -> None:
        gate.wait()
        found = equity.look_up(engine, team_id=TEAM, channel_id=CHANNEL, text="PPH")
        assert found is not None and found.job is not None
        frames.append(found.job.frame)
        assert len(found.job.frame) == 3

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(frames) == 10 and len({id(f) for f in frames}) == 10  # each its own frame
    assert len(calls) == 2  # the first, and one begun after the other nine asked: not ten
    engine.dispose()
