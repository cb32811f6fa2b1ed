"""`meltica keys` as an operator runs it: create (bound to accounts, expiring, rate-limited), list,
rotate with an overlap, revoke — checked against the key store a running API verifies with."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import create_engine
from typer.testing import CliRunner

from meltica.api.keys import KeyStore
from meltica.cli.app import app


def meltica(data_dir: Path, *args: str) -> Any:
    """The CLI in this process (as `tests.e2e.test_cli.meltica` runs it, without a subprocess)."""
    env: dict[str, str | None] = dict.fromkeys(k for k in os.environ if k.startswith("MELTICA_"))
    env |= {"MELTICA_DATA_DIR": str(data_dir), "MELTICA_LOG_BACKEND": "sqlite"}
    result = CliRunner().invoke(app, list(args), env=env)
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def test_keys_create_list_rotate_revoke(tmp_path: Path) -> None:
    unbound = meltica(tmp_path, "keys", "create", "--name", "desk", "--scopes", "read,trade")
    assert unbound.returncode == 1
    assert "--accounts" in unbound.stderr
    made = meltica(
        tmp_path,
        *("keys", "create", "--name", "desk", "--accounts", "A,B"),
        *("--ttl", "30d", "--rate", "50/s"),
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    viewer = meltica(tmp_path, "keys", "create", "--name", "viewer", "--scopes", "read")
    assert viewer.returncode == 0, viewer.stderr
    everywhere = meltica(
        tmp_path, "keys", "create", "--name", "bot", "--all-accounts", "--expires", "2099-01-01"
    )
    assert everywhere.returncode == 0, everywhere.stderr
    twice = meltica(tmp_path, "keys", "create", "--name", "desk", "--accounts", "A")
    assert (twice.returncode, "exists" in twice.stderr) == (1, True)

    listed = meltica(tmp_path, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert secret.split("_", 2)[2] not in listed.stdout
    keys = {k["name"]: k for k in json.loads(listed.stdout)}
    assert (keys["desk"]["accounts"], keys["desk"]["rate"]) == (["A", "B"], "50/s")
    assert keys["desk"]["scopes"] == ["read", "trade"]
    assert keys["desk"]["prefix"] == secret[: len(keys["desk"]["prefix"])]
    assert (keys["viewer"]["accounts"], keys["bot"]["accounts"]) == ("*", "*")
    assert keys["bot"]["expires_at"].startswith("2099-01-01")
    assert keys["desk"]["last_used_at"] is None
    assert "desk" in meltica(tmp_path, "keys", "list").stdout

    rotated = meltica(tmp_path, "keys", "rotate", "desk", "--overlap", "1h")
    assert rotated.returncode == 0, rotated.stderr
    fresh = rotated.stdout.strip()
    store = KeyStore(create_engine(f"sqlite:///{tmp_path / 'readmodels.db'}"), cache_seconds=0)
    for presented in (secret, fresh):
        key, why = store.verify(presented)
        assert key is not None, why
        assert key.accounts == frozenset({"A", "B"})
    assert meltica(tmp_path, "keys", "revoke", "desk").returncode == 0
    assert store.verify(fresh) == (None, "the API key is revoked")
    assert store.verify(secret) == (None, "the API key is revoked")
    after = {k["name"]: k for k in json.loads(meltica(tmp_path, "keys", "list", "--json").stdout)}
    assert after["desk"]["revoked"] is True
    assert after["desk"]["last_used_at"] is not None
    assert meltica(tmp_path, "keys", "revoke", "nobody").returncode == 1
