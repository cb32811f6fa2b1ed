"""deploy/terraform/acls.tf.json on a broker that enforces ACLs (deny by default): each service runs
as its own principal with only the committed grants, orders go through to fills, and a principal
cannot write or read what its service does not."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from sqlalchemy import create_engine, func, select

from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import Message, Record
from meltica.log.kafka import KafkaLog
from meltica.projections.tables import orders
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS, VENUE_REPORTS, VENUE_REQUESTS
from tests.conftest import IN_CI
from tests.distributed.cluster import PROCESSORS, ROOT, Broker, Cluster, _free_ports
from tests.distributed.test_services import fresh_database  # noqa: F401  (a fixture)
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka

RESOURCE = {
    "Topic": ResourceType.TOPIC,
    "Group": ResourceType.GROUP,
    "TransactionalID": ResourceType.TRANSACTIONAL_ID,
    "Cluster": ResourceType.BROKER,
}
PATTERN = {"Literal": ResourcePatternType.LITERAL, "Prefixed": ResourcePatternType.PREFIXED}
OPERATION = {
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
    "Create": AclOperation.CREATE,
    "Describe": AclOperation.DESCRIBE,
    "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE,
}


def committed_acls(namespace: str) -> list[AclBinding]:
    """The committed file's ACLs as Terraform would apply them (defaults: client id `meltica`)."""
    doc = json.loads((ROOT / "deploy" / "terraform" / "acls.tf.json").read_text())
    out = []
    for a in doc["locals"]["acls"].values():
        name = a["name"].replace("${var.client_id}", "meltica")
        out.append(
            AclBinding(
                RESOURCE[a["type"]],
                f"{namespace}.{name}" if a["namespaced"] else name,
                PATTERN[a["pattern"]],
                f"User:{a['service']}",
                "*",
                OPERATION[a["operation"]],
                AclPermissionType.ALLOW,
            )
        )
    return out


def security(user: str) -> dict[str, str]:
    return {
        "security.protocol": "sasl_plaintext",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": f"pw-{user}",
    }


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Broker]:
    if not list((ROOT / ".cache" / "kafka").glob("libs-*/.complete")) and not IN_CI:
        pytest.skip(
            "scripts/kafka.sh has not installed a broker here (run it once: scripts/kafka.sh install)"
        )
    b = Broker(tmp_path / "broker", acls=True)
    b.start()
    try:
        yield b
    finally:
        b._script("stop")


def test_each_service_runs_with_only_its_grants(
    acl_broker: Broker,
    tmp_path: Path,
    fresh_database: str,  # noqa: F811  (the fixture imported above)
) -> None:
    sasl = f"127.0.0.1:{acl_broker.port + 2}"
    cluster = Cluster(acl_broker.bootstrap, tmp_path / "cluster", fresh_database)  # topics: the super user's
    admin = AdminClient({"bootstrap.servers": acl_broker.bootstrap})
    users = [*PROCESSORS, "venues", "projector", "api"]
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    upserts = [UserScramCredentialUpsertion(u, info, f"pw-{u}".encode()) for u in users]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout=30)
    for future in admin.create_acls(committed_acls(cluster.namespace)).values():
        future.result(timeout=30)
    health = _free_ports(1)
    try:
        for service in [*PROCESSORS, "venues", "projector"]:
            env = cluster.env() | {
                "MELTICA_KAFKA_BOOTSTRAP": sasl,
                "MELTICA_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "MELTICA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "MELTICA_KAFKA_SASL_USERNAME": service,
                "MELTICA_KAFKA_SASL_PASSWORD": f"pw-{service}",
            }
            args = {"venues": ["--health-port", str(health)], "projector": []}.get(
                service, ["--instance", f"{service}-1"]
            )
            cluster.procs[service] = subprocess.Popen(
                [sys.executable, "-m", "meltica", "run", service, *args],
                env=env,
                stdout=(cluster.workdir / f"{service}.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
        cluster.setup_market()
        cluster.wait_ready()
        wait_until(lambda: _ready(health), 60, "the venues service ready", detail=cluster.logs)

        api = KafkaLog(sasl, namespace=cluster.namespace, security=security("api"))
        subs = cluster.submissions(7, 20)
        Publisher(api, Codec(registry=EmbeddedSchemaRegistry(api))).publish_many(ORDER_COMMANDS, subs)
        cluster.wait_quiet()
        events = " ".join(
            json.dumps(cluster.codec.decode_record(r).record, default=str)
            for r in _all(cluster, ORDER_EVENTS)
        )
        assert all(f'"{s.order.order_id}"' in events for s in subs), cluster.logs()
        assert _all(cluster, VENUE_REPORTS), "no execution report: the venue service could not write"
        db = create_engine(fresh_database)
        ids = [s.order.order_id for s in subs]
        projected = select(func.count()).select_from(orders).where(orders.c.order_id.in_(ids))
        wait_until(lambda: _count(db, projected) == len(ids), 60, "the orders projected", detail=cluster.logs)
        db.dispose()
        assert all(p.poll() is None for p in cluster.procs.values()), cluster.logs()

        risk = KafkaLog(sasl, namespace=cluster.namespace, security=security("risk"))
        with pytest.raises(MelticaError):  # only the API and the strategies submit orders
            risk.append([Message(ORDER_COMMANDS, b"forged", b"ACC-0")])
        with pytest.raises(MelticaError):  # venue requests are the venue's and the gateways'
            risk.read(VENUE_REQUESTS, 0, 0, 1)
        risk.close()
        api.close()
    finally:
        cluster.close()


def _count(db: Any, query: Any) -> int:
    with db.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _all(cluster: Cluster, topic: str) -> list[Record]:
    out: list[Record] = []
    for p in range(cluster.log.partitions(topic)):
        out += cluster.log.read(topic, p, 0, 10_000)
    return out
