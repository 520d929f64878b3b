"""Group commit: writes of many threads share batches, and each caller sees its own result."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, TypeVar

import pytest

from services.mailer.groupcommit import GroupCommit

T = TypeVar("T")


class HeldFirstBatch(Generic[T]):
    """A writer that records its batches and holds the first until released, so that the
    items submitted meanwhile queue behind it; a batch holding "bad" fails."""

    def __init__(self) -> None:
        self.batches: list[list[T]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: Sequence[T]) -> None:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            self.release.wait(5)
        if "bad" in items:
            raise RuntimeError("database gone")


def test_every_item_is_written_once_and_concurrent_items_share_batches() -> None:
    write: HeldFirstBatch[int] = HeldFirstBatch()
    batches, entered, release = write.batches, write.entered, write.release
    commit: GroupCommit[int] = GroupCommit(write)
    first = threading.Thread(target=commit.submit, args=(0,))
    first.start()
    assert entered.wait(5)
    others = [threading.Thread(target=commit.submit, args=(n,)) for n in range(1, 9)]
    for thread in others:
        thread.start()
    while sum(t.is_alive() for t in others) < len(others):
        pass
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert sorted(item for batch in batches for item in batch) == list(range(9))
    assert batches[0] == [0]
    assert len(batches) < 9  # the queued items did not each get a transaction


def test_a_failed_write_raises_in_each_caller_of_its_batch_and_not_later() -> None:
    calls: list[list[str]] = []

    def write(items: Sequence[str]) -> None:
        calls.append(list(items))
        if "bad" in items:
            raise RuntimeError("database gone")

    commit: GroupCommit[str] = GroupCommit(write)
    with pytest.raises(RuntimeError, match="database gone"):
        commit.submit("bad")
    commit.submit("good")  # the next batch is written afresh
    assert calls == [["bad"], ["good"]]


def test_submit_nowait_queues_behind_a_busy_writer_and_wait_collects_the_result() -> None:
    write: HeldFirstBatch[str] = HeldFirstBatch()
    batches, entered, release = write.batches, write.entered, write.release
    commit: GroupCommit[str] = GroupCommit(write)
    first = threading.Thread(target=commit.submit, args=("first",))
    first.start()
    assert entered.wait(5)
    good = commit.submit_nowait("good")  # returns at once: the busy writer takes it next
    bad = commit.submit_nowait("bad")
    assert not good.done and not bad.done
    release.set()
    first.join(5)
    with pytest.raises(RuntimeError, match="database gone"):
        commit.wait(bad)
    with pytest.raises(RuntimeError, match="database gone"):
        commit.wait(good)  # it shared the failed batch
    assert batches == [["first"], ["good", "bad"]]
    commit.wait(commit.submit_nowait("later"))  # no writer busy: written by the caller itself
    assert batches[-1] == ["later"]
