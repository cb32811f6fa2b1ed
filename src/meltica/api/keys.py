"""API keys: `mk_<id>_<secret>`; only a SHA-256 of the secret is stored. Scopes: read, trade, admin."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from meltica.projections.tables import api_keys

SCOPES = ("read", "trade", "admin")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: Engine, name: str, scopes: list[str]) -> str:
    """Store a new key and return it; it is shown once and cannot be recovered."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(
            f"scopes are some of {', '.join(SCOPES)}; got {', '.join(sorted(unknown)) or 'none'}"
        )
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    with db.begin() as conn:
        conn.execute(
            insert(api_keys).values(
                key_id=key_id,
                secret_hash=_digest(secret),
                name=name,
                scopes=",".join(scopes),
                created_at=datetime.now(UTC),
                revoked=0,
            )
        )
    return f"mk_{key_id}_{secret}"


def verify(db: Engine, presented: str) -> ApiKey | None:
    """The key behind `presented`, if it is valid and not revoked."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "mk":
        return None
    _, key_id, secret = parts
    with db.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None or row.revoked or not hmac.compare_digest(row.secret_hash, _digest(secret)):
        return None
    return ApiKey(row.key_id, row.name, frozenset(row.scopes.split(",")))
