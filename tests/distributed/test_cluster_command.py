"""`meltica cluster` on the real broker: it seeds, runs every service, an order through its API is
filled, a SIGKILLed service is restarted and trading goes on, and SIGTERM stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from meltica.cli.cluster import SERVICES
from tests.distributed.test_services import fresh_database  # noqa: F401  (a fixture)
from tests.distributed.test_user_faults import _free_ports
from tests.waiting import wait_until

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "meltica.yaml"


def _until(condition: Callable[[], bool], timeout: float, what: str, output: Path) -> None:
    wait_until(condition, timeout, what, every=0.3, detail=lambda: output.read_text()[-4000:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cluster_runs_restarts_and_stops_every_service(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    api_port, health_base = _free_ports(1), _free_ports(len(SERVICES))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    env |= {
        "MELTICA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MELTICA_DATABASE_URL": fresh_database,
        "MELTICA_NAMESPACE": f"t{uuid.uuid4().hex[:10]}",
        "MELTICA_API_PORT": str(api_port),
        "MELTICA_DATA_DIR": str(tmp_path / "data"),
    }
    output = tmp_path / "cluster.out"
    args = [sys.executable, "-m", "meltica", "--config", str(CONFIG), "cluster"]
    args += ["--health-base", str(health_base), "--log-dir", str(tmp_path / "logs")]
    with output.open("wb") as sink:
        cluster = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:

        def states() -> dict[str, str]:
            found: dict[str, str] = {}
            for service, state in re.findall(r"cluster: (\w+) +(\w+)", output.read_text()):
                found[service] = state
            return found

        _until(lambda: all(states().get(s) == "ready" for s in SERVICES), 300, "every service ready", output)
        assert "cluster: seeded instruments BTCUSDT.SIM" in output.read_text()
        key = subprocess.run(
            [
                sys.executable,
                "-m",
                "meltica",
                "keys",
                "create",
                "--name",
                "t",
                "--scopes",
                "read,trade,admin",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        # an account of its own, funded by the operator's command (default limits: one order at a
        # time is well within them; the demo strategy trades DEMO meanwhile)
        subprocess.run(
            [sys.executable, "-m", "meltica", "--config", str(CONFIG), "deposit", "T-1", "USDT", "100000"],
            env=env,
            check=True,
            capture_output=True,
        )
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"X-API-Key": key}, timeout=60)

        def filled(client_order_id: str) -> None:
            body = {
                "account_id": "T-1",
                "instrument_id": "BTCUSDT.SIM",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.01",
                "client_order_id": client_order_id,
            }
            response = api.post("/v1/orders?wait=filled&timeout=10", json=body)
            assert response.status_code in (200, 201, 202), response.text
            order_id = response.json()["order_id"]

            def done() -> bool:
                return bool(api.get(f"/v1/orders/{order_id}").json().get("status") == "FILLED")

            _until(done, 60, f"order {client_order_id} FILLED", output)

        filled("first")
        [pid] = [int(p) for p in re.findall(r"cluster: orders +starting \(pid (\d+)\)", output.read_text())]
        os.kill(pid, signal.SIGKILL)
        _until(lambda: "cluster: orders     exited (status -9" in output.read_text(), 30, "noticed", output)
        _until(lambda: states().get("orders") == "ready", 120, "orders restarted", output)
        assert len(re.findall(r"cluster: orders +starting", output.read_text())) == 2
        filled("after-the-kill")
        api.close()

        children = [int(p) for p in re.findall(r"starting \(pid (\d+)\)", output.read_text())]
        cluster.send_signal(signal.SIGTERM)
        assert cluster.wait(timeout=90) == 0
        text = output.read_text()
        assert "cluster: stopped" in text
        assert not [p for p in children if _alive(p)], "a service outlived the cluster"
        assert all(f"cluster: {s:<10} stopped (status" in text for s in SERVICES), text[-3000:]
    finally:
        if cluster.poll() is None:  # (its services get SIGTERM when it dies, on Linux)
            cluster.send_signal(signal.SIGTERM)
            try:
                cluster.wait(timeout=90)
            except subprocess.TimeoutExpired:
                cluster.kill()
                cluster.wait()
