"""Group commit: appends from concurrent callers share one log append, each caller gets its own
records' positions, and a failed append is every caller's failure."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from meltica.errors import LogError
from meltica.log.base import Message, Position, TopicSpec
from meltica.log.memory import MemoryLog
from meltica.runtime.group_commit import GroupCommit


class SlowLog(MemoryLog):
    """Counts appends; the first one waits until `release` is set (the others queue meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.appends: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def append(self, messages: Sequence[Message]) -> list[Position]:
        self.appends.append(len(messages))
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise LogError("the disk is full")
        return super().append(messages)


def message(n: int) -> Message:
    return Message("t", str(n).encode(), str(n).encode())


def test_concurrent_appends_share_one_log_append_and_get_their_own_positions() -> None:
    log = SlowLog()
    log.create_topic(TopicSpec("t", 1))
    commits = GroupCommit(log)
    with ThreadPoolExecutor(20) as pool:
        first = pool.submit(commits.append, [message(0)])
        assert log.entered.wait(60)
        rest = [pool.submit(commits.append, [message(n), message(n + 100)]) for n in range(1, 20)]
        while commits.calls == 0 and len(commits._queue) < 19:
            threading.Event().wait(0.001)  # (the 19 queue behind the first append)
        log.release.set()
        assert [p.offset for p in first.result(60)] == [0]
        positions = [f.result(60) for f in rest]
    assert log.appends == [1, 38]  # two commits for twenty callers
    assert (commits.appends, commits.calls) == (2, 20)
    for n, (a, b) in enumerate(positions, start=1):
        got = {r.offset: r.value for r in log.read("t", 0, 0, 100)}
        assert (got[a.offset], got[b.offset]) == (str(n).encode(), str(n + 100).encode())


def test_a_failed_append_fails_every_caller_of_it_and_the_next_caller_leads_again() -> None:
    log = SlowLog()
    log.create_topic(TopicSpec("t", 1))
    log.fail = True
    log.release.set()
    commits = GroupCommit(log)
    with pytest.raises(LogError, match="disk is full"):
        commits.append([message(1)])
    log.fail = False
    assert [p.offset for p in commits.append([message(2)])] == [0]
