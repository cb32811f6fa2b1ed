"""API keys: `mk_<id>_<secret>`; only a SHA-256 of the secret is stored. Scopes: read, trade, admin.

A key is bound to accounts (none bound: every account; the admin scope: every account), may expire,
may be revoked, and may be rotated: a new secret for the same key, the previous one still valid for
an overlap window. `KeyStore` verifies presented keys against a short-lived cache of their rows.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from meltica.api.problems import Problem
from meltica.api.ratelimit import Rate, parse_rate
from meltica.clock import Clock, LiveClock
from meltica.projections.tables import api_keys

SCOPES = ("read", "trade", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
ACCOUNT = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_DURATION = re.compile(r"^\s*([0-9]{1,9})\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LONGEST = timedelta(days=3660)  # a ttl or overlap of at most ten years
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KeyNotFoundError(LookupError):
    """No live key has that name or id."""


class KeyExistsError(ValueError):
    """A live key has that name."""


@dataclass(frozen=True)
class ApiKey:
    """A verified caller: its scopes, the accounts it may act on (None: every one), its rate."""

    key_id: str
    name: str
    scopes: frozenset[str]
    accounts: frozenset[str] | None = None
    rate: Rate | None = None

    @property
    def all_accounts(self) -> bool:
        return self.accounts is None or "admin" in self.scopes

    def may_use(self, account_id: str) -> bool:
        return self.all_accounts or account_id in (self.accounts or ())

    def require_account(self, account_id: str) -> None:
        """403 `forbidden` unless this key may act on `account_id`."""
        if not self.may_use(account_id):
            raise Problem(403, "forbidden", "Forbidden", f"this key may not act on account {account_id}")

    @property
    def visible(self) -> frozenset[str] | None:
        """The accounts whose rows this key may read (None: every account)."""
        return None if self.all_accounts else frozenset(self.accounts or ())


@dataclass(frozen=True)
class KeyRecord:
    """A row of `api_keys`."""

    key_id: str
    name: str
    scopes: frozenset[str]
    accounts: frozenset[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked: bool
    rate: Rate | None
    secret_hash: str
    previous_secret_hash: str | None
    previous_valid_until: datetime | None

    @classmethod
    def of(cls, row: Any) -> KeyRecord:
        return cls(
            key_id=row.key_id,
            name=row.name,
            scopes=frozenset(row.scopes.split(",")),
            accounts=None if row.accounts is None else frozenset(a for a in row.accounts.split(",") if a),
            created_at=_utc(row.created_at) or EPOCH,  # NOT NULL: never the fallback
            expires_at=_utc(row.expires_at),
            last_used_at=_utc(row.last_used_at),
            revoked_at=_utc(row.revoked_at),
            revoked=bool(row.revoked),
            rate=None if row.rate is None else parse_rate(row.rate),
            secret_hash=row.secret_hash,
            previous_secret_hash=row.previous_secret_hash,
            previous_valid_until=_utc(row.previous_valid_until),
        )

    @property
    def key(self) -> ApiKey:
        return ApiKey(self.key_id, self.name, self.scopes, self.accounts, self.rate)

    def problem(self, now: datetime) -> str | None:
        """Why this key may not be used at `now`, or None."""
        if self.revoked:
            return "the API key is revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "the API key has expired"
        return None

    def matches(self, secret: str, now: datetime) -> bool:
        """Is `secret` this key's secret, or its previous one within the rotation overlap?"""
        digest = _digest(secret)
        if hmac.compare_digest(self.secret_hash, digest):
            return True
        return (
            self.previous_secret_hash is not None
            and self.previous_valid_until is not None
            and now < self.previous_valid_until
            and hmac.compare_digest(self.previous_secret_hash, digest)
        )

    def document(self) -> dict[str, Any]:
        """What `keys list` and `GET /v1/admin/keys` show: never a secret or its hash."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "prefix": f"mk_{self.key_id}_",
            "scopes": sorted(self.scopes, key=SCOPES.index),
            "accounts": "*" if self.accounts is None else sorted(self.accounts),
            "rate": None if self.rate is None else str(self.rate),
            "created_at": self.created_at.isoformat(),
            "last_used_at": None if self.last_used_at is None else self.last_used_at.isoformat(),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "revoked": self.revoked,
            "previous_valid_until": (
                None if self.previous_valid_until is None else self.previous_valid_until.isoformat()
            ),
        }


def utc(ns: int) -> datetime:
    """A clock's nanoseconds as an aware UTC datetime (microseconds)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def now_of(clock: Clock | None) -> datetime:
    """The time of `clock`; without one (the CLI), the wall clock's."""
    return utc((clock or LiveClock()).now_ns())


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `30d`, `2w`."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"a duration is a whole number and s, m, h, d or w (e.g. 30d), not {text!r}")
    seconds = int(found.group(1)) * _UNITS[found.group(2)]
    if seconds > LONGEST.total_seconds():
        raise ValueError(f"a duration is at most ten years, not {text!r}")
    return timedelta(seconds=seconds)


def parse_expiry(expires: str | None, ttl: str | None, now: datetime | None = None) -> datetime | None:
    """The expiry of `--expires 2027-01-01[T12:00[+02:00]]` (UTC unless given) or `--ttl 30d`."""
    if expires and ttl:
        raise ValueError("give an expiry date or a time to live, not both")
    now = now or now_of(None)
    if ttl:
        return now + parse_duration(ttl)
    if not expires:
        return None
    try:
        at = datetime.fromisoformat(expires)
    except ValueError:
        raise ValueError(f"an expiry is an ISO date or time (2027-01-01), not {expires!r}") from None
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if at <= now:
        raise ValueError(f"the expiry {at.isoformat()} is in the past")
    return at


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = [s.strip() for s in scopes if s.strip()]
    unknown = set(chosen) - set(SCOPES)
    if unknown or not chosen:
        raise ValueError(
            f"scopes are some of {', '.join(SCOPES)}; got {', '.join(sorted(unknown)) or 'none'}"
        )
    return chosen


def choose_accounts(
    scopes: Iterable[str], accounts: Iterable[str] | None, all_accounts: bool
) -> frozenset[str] | None:
    """The binding a new key gets from the CLI or the admin API: a key that may trade names its
    accounts or says `all_accounts`; a read-only key without accounts reads every account."""
    chosen = frozenset(a.strip() for a in accounts or () if a.strip())
    if chosen and all_accounts:
        raise ValueError("give accounts or all accounts, not both")
    if all_accounts or "admin" in scopes:
        return None
    if not chosen and "trade" in scopes:
        raise ValueError("a key with the trade scope names its accounts (--accounts A,B) or --all-accounts")
    return chosen or None


def create_key(
    db: Engine,
    name: str,
    scopes: list[str],
    accounts: Iterable[str] | None = None,
    expires_at: datetime | None = None,
    rate: Rate | None = None,
    clock: Clock | None = None,
) -> str:
    """Store a new key and return it; it is shown once and cannot be recovered. `accounts` None:
    every account."""
    chosen = check_scopes(scopes)
    if not NAME.match(name):
        raise ValueError(f"a key name is letters, digits and . _ @ - (at most 128), not {name!r}")
    bound = None if accounts is None else sorted(set(accounts))
    if bound is not None and (not bound or not all(ACCOUNT.match(a) for a in bound)):
        raise ValueError(f"account ids are letters, digits and . _ : - ; got {', '.join(bound) or 'none'}")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    with db.begin() as conn:
        live = select(api_keys.c.key_id).where(api_keys.c.name == name, api_keys.c.revoked == 0)
        if conn.execute(live).first() is not None:
            raise KeyExistsError(f"a key named {name} exists; revoke or rotate it")
        conn.execute(
            insert(api_keys).values(
                key_id=key_id,
                secret_hash=_digest(secret),
                name=name,
                scopes=",".join(chosen),
                accounts=None if bound is None else ",".join(bound),
                created_at=now_of(clock),
                expires_at=expires_at,
                rate=None if rate is None else str(rate),
                revoked=0,
            )
        )
    return f"mk_{key_id}_{secret}"


def list_keys(db: Engine) -> list[KeyRecord]:
    with db.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id))
        return [KeyRecord.of(r) for r in rows]


def find_key(db: Engine, name_or_id: str) -> KeyRecord:
    """The key with this id, else the live key with this name."""
    with db.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == name_or_id)).first()
        if row is None:
            found = conn.execute(
                select(api_keys).where(api_keys.c.name == name_or_id, api_keys.c.revoked == 0)
            ).all()
            if len(found) > 1:
                raise KeyNotFoundError(f"several live keys are named {name_or_id}; give the key id")
            row = found[0] if found else None
    if row is None:
        raise KeyNotFoundError(f"no key has the id or live name {name_or_id}")
    return KeyRecord.of(row)


def revoke_key(db: Engine, name_or_id: str, clock: Clock | None = None) -> KeyRecord:
    """Revoke a key (both its secrets); revoking a revoked key changes nothing."""
    record = find_key(db, name_or_id)
    if not record.revoked:
        with db.begin() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == record.key_id)
                .values(revoked=1, revoked_at=now_of(clock))
            )
    return find_key(db, record.key_id)


def rotate_key(db: Engine, name_or_id: str, overlap: timedelta, clock: Clock | None = None) -> str:
    """A new secret for the key; the current one stays valid for `overlap` (a secret from an earlier
    rotation stops at once). Returns the new key, shown once."""
    record = find_key(db, name_or_id)
    now = now_of(clock)
    if record.problem(now):
        raise KeyNotFoundError(f"key {name_or_id} is revoked or expired; create a new one")
    secret = secrets.token_urlsafe(32)
    with db.begin() as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.key_id == record.key_id)
            .values(
                secret_hash=_digest(secret),
                previous_secret_hash=record.secret_hash if overlap > timedelta(0) else None,
                previous_valid_until=now + overlap if overlap > timedelta(0) else None,
            )
        )
    return f"mk_{record.key_id}_{secret}"


class KeyStore:
    """Verifies presented keys. A key's row is cached for `cache_seconds` (a revocation elsewhere
    takes effect within that time; one through this store at once); a secret the cached row does not
    match is looked up again (a rotation elsewhere). "last used" is written at most every
    `touch_seconds` per key."""

    def __init__(
        self,
        db: Engine,
        cache_seconds: float = 1.0,
        touch_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Clock | None = None,
    ) -> None:
        self.db = db
        self.wall = wall  # key expiry and "last used" (None: the wall clock)
        self.cache_seconds = cache_seconds
        self.touch_seconds = touch_seconds
        self._clock = clock
        self._rows: dict[str, tuple[float, KeyRecord | None]] = {}
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def _record(self, key_id: str, fresh: bool) -> KeyRecord | None:
        now = self._clock()
        cached = self._rows.get(key_id)
        if not fresh and cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        with self.db.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        record = None if row is None else KeyRecord.of(row)
        if record is not None:  # unknown ids are not cached: they would fill the cache
            self._rows[key_id] = (now, record)
        return record

    def verify(self, presented: str) -> tuple[ApiKey | None, str]:
        """The key behind `presented`, or None and why."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != "mk" or len(parts[1]) > 32:
            return None, "a valid API key is required (X-API-Key)"
        _, key_id, secret = parts
        now = now_of(self.wall)
        record = self._record(key_id, fresh=False)
        if record is not None and not record.matches(secret, now):
            record = self._record(key_id, fresh=True)
        if record is None or not record.matches(secret, now):
            return None, "a valid API key is required (X-API-Key)"
        problem = record.problem(now)
        if problem:
            return None, problem
        self._touch(key_id)
        return record.key, ""

    def live(self, key_id: str) -> bool:
        """Is the key still neither revoked nor expired (as of the cache)?"""
        record = self._record(key_id, fresh=False)
        return record is not None and record.problem(now_of(self.wall)) is None

    def forget(self, key_id: str) -> None:
        """Drop a cached row (after a change through this process)."""
        self._rows.pop(key_id, None)

    def _touch(self, key_id: str) -> None:
        now = self._clock()
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < self.touch_seconds:
                return
            self._touched[key_id] = now
        with self.db.begin() as conn:
            conn.execute(
                update(api_keys).where(api_keys.c.key_id == key_id).values(last_used_at=now_of(self.wall))
            )
