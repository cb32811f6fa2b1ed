"""The secret that signs snapshots: a snapshot is a pickle, so only a signed one is unpickled.

Each snapshot carries an HMAC-SHA256 over its bytes (and what names it), made with a key only
this installation holds: `<data_dir>/snapshot.key` by default (32 random bytes, hex, created
0600 at first use), or the file `MELTICA_SNAPSHOT_KEY_FILE` names (services on several machines
share one such secret to use each other's snapshots). A file dropped next to the snapshots
cannot carry a valid MAC, so it is refused before anything in it is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import threading
from pathlib import Path

from meltica.errors import MelticaError

KEY_FILE = "snapshot.key"
MAC_BYTES = 32


class SnapshotKeyError(MelticaError):
    """The key file is unusable (unreadable, malformed, or open to other users)."""


def load_key(path: Path) -> bytes:
    """The key in `path`, creating it (0600, atomically) when there is none yet."""
    if not path.exists():
        _create(path)
    info = path.stat()
    if os.name == "posix":
        if info.st_uid != os.getuid():
            raise SnapshotKeyError(f"{path}: snapshot key not owned by this user; refusing it")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise SnapshotKeyError(f"{path}: snapshot key readable or writable by others; chmod 600 it")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise SnapshotKeyError(f"{path}: not a snapshot key (64 hex digits)") from None
    if len(key) < 16:
        raise SnapshotKeyError(f"{path}: snapshot key too short (at least 32 hex digits)")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # per thread too
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(MAC_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # never replace a key another process made meanwhile
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def default_key() -> bytes:
    """The key of the configured installation (`MELTICA_SNAPSHOT_KEY_FILE` or the data dir's)."""
    from meltica.config import load_settings

    return load_key(load_settings().snapshot_key_path)


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over `parts` (each length-prefixed, so no two splits of one text collide)."""
    h = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def verify(key: bytes, tag: bytes, *parts: bytes) -> bool:
    """Whether `tag` is the MAC of `parts` under `key` (compared in constant time)."""
    return hmac.compare_digest(tag, mac(key, *parts))
