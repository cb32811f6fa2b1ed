"""Token buckets and the rules of key creation: rates, durations, expiries, account bindings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meltica.api.keys import ApiKey, choose_accounts, parse_duration, parse_expiry
from meltica.api.ratelimit import Buckets, Rate, parse_rate, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock, rate = Clock(), parse_rate("4/s")
    buckets = Buckets(clock)
    assert [buckets.take("k", rate) for _ in range(4)] == [0.0] * 4
    assert buckets.take("k", rate) == pytest.approx(0.25)
    assert buckets.take("other", rate) == 0.0, "one bucket per key"
    clock.now = 0.25
    assert buckets.take("k", rate) == 0.0
    assert buckets.wait("k", rate) == pytest.approx(0.25)
    clock.now = 100.0
    assert [buckets.take("k", rate) for _ in range(5)][-1] > 0, "refilled to the burst, not beyond"


def test_a_full_table_forgets_refilled_buckets_first() -> None:
    clock, rate = Clock(), parse_rate("1/s")
    buckets = Buckets(clock, max_buckets=3)
    for key in ("a", "b", "c"):
        buckets.take(key, rate)
    clock.now = 5.0  # a, b, c are full again: as good as new
    buckets.take("d", rate)
    assert buckets.take("d", rate) > 0, "d's bucket is kept"
    assert buckets.take("a", rate) == 0.0


def test_rates_durations_and_expiries_parse_strictly() -> None:
    assert parse_rate("50/s") == Rate(50, 1.0)
    assert str(parse_rate("30/m")) == "30/m"
    assert parse_rate(" 2 / h ") == Rate(2, 3600.0)
    for bad in ("0/s", "1.5/s", "50", "50/d", "-1/s", "1e3/s"):
        with pytest.raises(ValueError, match="N/s"):
            parse_rate(bad)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("30d") == timedelta(days=30)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("1y")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_expiry("2027-01-01", None, now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_expiry(None, "30d", now) == now + timedelta(days=30)
    assert parse_expiry(None, None, now) is None
    with pytest.raises(ValueError, match="past"):
        parse_expiry("2020-01-01", None, now)
    with pytest.raises(ValueError, match="not both"):
        parse_expiry("2027-01-01", "30d", now)
    assert retry_after(0.01) == 1
    assert retry_after(11.2) == 12


def test_a_trade_key_names_its_accounts_or_all() -> None:
    with pytest.raises(ValueError, match="--accounts"):
        choose_accounts(["read", "trade"], None, all_accounts=False)
    assert choose_accounts(["read", "trade"], ["A", " B"], all_accounts=False) == frozenset({"A", "B"})
    assert choose_accounts(["trade"], None, all_accounts=True) is None
    assert choose_accounts(["read"], None, all_accounts=False) is None
    assert choose_accounts(["admin"], None, all_accounts=False) is None
    with pytest.raises(ValueError, match="not both"):
        choose_accounts(["trade"], ["A"], all_accounts=True)


def test_an_admin_key_acts_on_every_account() -> None:
    desk = ApiKey("k1", "desk", frozenset({"read", "trade"}), frozenset({"A"}))
    ops = ApiKey("k2", "ops", frozenset({"admin"}), frozenset({"A"}))
    assert (desk.may_use("A"), desk.may_use("B")) == (True, False)
    assert ops.may_use("B")
    assert ApiKey("k3", "any", frozenset({"read"})).may_use("B")
