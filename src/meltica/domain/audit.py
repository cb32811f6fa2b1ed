"""The audit trail of the control surface: every state-changing call becomes an event."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiCallAudited:
    """Mirrors the Avro `ApiCallAudited`; `ts` is when the call was answered."""

    key_id: str
    key_name: str
    method: str
    path: str
    status_code: int
    body_sha256: str
    client: str
    ts: int
