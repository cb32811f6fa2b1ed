"""deploy/terraform/acls.tf.json: each service's principal may do exactly what the service does."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from meltica import topics
from meltica.deploy.access import GATEWAY_GROUP_PREFIX, SCHEMAS_TOPIC, all_grants, services
from meltica.deploy.terraform import render_acls, resource_name
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.topology import NODES
from meltica.venues.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "deploy" / "terraform"
SRC = ROOT / "src" / "meltica"
PROCESSORS = list(NODES)  # the topology's processors and the fused pipeline

Acl = tuple[str, str, str, str, str]  # service, operation, resource type, pattern, name


def committed() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((TERRAFORM / "acls.tf.json").read_text())
    return doc


@pytest.fixture(scope="module")
def acls() -> set[Acl]:
    """The ACLs of the committed file (what Terraform applies), not of the generator."""
    return {
        (a["service"], a["operation"], a["type"], a["pattern"], a["name"])
        for a in committed()["locals"]["acls"].values()
    }


def may(acls: set[Acl], service: str, operation: str, resource: str, name: str) -> bool:
    """Whether `service` may do `operation` on the resource `name` (Read and Write imply Describe)."""
    ops = {operation, "Read", "Write"} if operation == "Describe" else {operation}
    return any(
        s == service
        and op in ops
        and t == resource
        and (name.startswith(n) if pattern == "Prefixed" else name == n)
        for s, op, t, pattern, n in acls
    )


def holders(acls: set[Acl], operation: str, topic: str) -> set[str]:
    return {s for s in {a[0] for a in acls} if may(acls, s, operation, "Topic", topic)}


def test_committed_acls_are_generated_from_the_services() -> None:
    assert (TERRAFORM / "acls.tf.json").read_text() == render_acls(), (
        "run: meltica topics terraform --acls > deploy/terraform/acls.tf.json"
    )


def test_each_processor_reads_its_inputs_writes_its_outputs_and_owns_its_group(acls: set[Acl]) -> None:
    for node in NODES.values():
        for topic in node.inputs:
            assert may(acls, node.name, "Read", "Topic", topic), (node.name, topic)
            assert may(acls, node.name, "Write", "Topic", f"{topic}.dlq"), (node.name, topic)
        for topic in node.outputs:
            assert may(acls, node.name, "Write", "Topic", topic), (node.name, topic)
        for own in (f"processors.{node.name}.journal", f"processors.{node.name}.snapshots"):
            assert may(acls, node.name, "Read", "Topic", own)
            assert may(acls, node.name, "Write", "Topic", own)
        assert may(acls, node.name, "Read", "Group", f"meltica-{node.name}")
        assert may(acls, node.name, "Write", "TransactionalID", f"{node.name}-3f9c2a1b0d4e")
        assert not may(
            acls, node.name, "Read", "Group", "meltica-orders" if node.name != "orders" else "meltica-risk"
        )


def test_only_the_producers_of_a_topic_may_write_it(acls: set[Acl]) -> None:
    fused = "pipeline"  # `meltica run pipeline` writes what its members write
    assert holders(acls, "Write", "orders.commands") == {"api", "strategies", "router", fused}
    assert holders(acls, "Write", "orders.events") == {"risk", "orders", fused}
    assert holders(acls, "Write", "venue.requests") == {"orders", fused}
    assert holders(acls, "Write", "venue.reports") == {"venue", "venues", "router", fused}
    assert holders(acls, "Write", "risk.commands") == {"api"}
    assert holders(acls, "Write", "risk.events") == {"risk", fused}
    assert holders(acls, "Write", "portfolio.events") == {"portfolio", fused}
    assert holders(acls, "Write", "portfolio.commands") == {"venues"}  # venue balances (deposits: the CLI)
    assert holders(acls, "Write", "marketdata.quotes") == {"venues"}
    assert holders(acls, "Write", "marketdata.bars") == {"bars", "venues"}
    assert holders(acls, "Write", "audit.events") == {"api"}
    assert holders(acls, "Write", "processors.risk.journal") == {"risk"}
    assert holders(acls, "Read", "processors.risk.snapshots") == {"risk"}
    assert holders(acls, "Read", "venue.requests") == {"venue", "router", "venues"}
    assert holders(acls, "Read", "audit.events") == set()


def test_no_service_reads_or_writes_beyond_its_declaration(acls: set[Acl]) -> None:
    declared = {s.name: s for s in services()}
    for service, operation, resource, _pattern, name in acls:
        if resource == "Topic" and operation == "Read":
            assert name in declared[service].reads, (service, name)
        if resource == "Topic" and operation == "Write":
            assert name in declared[service].writes, (service, name)
    assert not may(acls, "bars", "Read", "Topic", "orders.events")
    assert not may(acls, "risk", "Read", "Topic", "venue.requests")
    assert not may(acls, "projector", "Write", "Topic", "orders.events")


def test_grants_are_narrow(acls: set[Acl]) -> None:
    allowed = {"Read", "Write", "Describe", "Create", "IdempotentWrite"}
    for service, operation, resource, pattern, name in acls:
        assert operation in allowed, (service, operation, name)
        assert name not in ("*", ""), (service, operation, name)
        assert not (resource == "Topic" and pattern == "Prefixed"), (service, name)
        assert operation != "Create" or name == SCHEMAS_TOPIC, (service, name)  # the registry's own topic
        assert resource != "Cluster" or operation == "IdempotentWrite", (service, operation)


def test_prefixes_do_not_reach_another_services_names() -> None:
    """`venue-` must not cover `venues-...`, `meltica-venue-broadcast-` not `meltica-venues`: a prefix
    one service holds for joining, committing or transacting names nothing of another service."""
    grants = [g for g in all_grants() if g.operation != "Describe" and g.resource != "Topic"]
    for mine in (g for g in grants if g.pattern == "Prefixed"):
        for other in (g for g in grants if g.service != mine.service and g.resource == mine.resource):
            assert not other.name.text.startswith(mine.name.text), (mine, other)


def test_every_topic_named_is_declared_by_terraform(acls: set[Acl]) -> None:
    declared = json.loads((TERRAFORM / "topics.tf.json").read_text())["resource"]["kafka_topic"]
    for _service, _operation, resource, _pattern, name in acls:
        if resource == "Topic":
            assert resource_name(name) in declared, name
    schemas = declared[resource_name(SCHEMAS_TOPIC)]
    assert schemas["partitions"] == 1
    assert schemas["config"] == {"cleanup.policy": "compact"}


def test_every_service_may_see_every_topic(acls: set[Acl]) -> None:
    """On start a service lists the topics and creates those it does not see: it must see them all."""
    declared = json.loads((TERRAFORM / "topics.tf.json").read_text())["resource"]["kafka_topic"]
    names = {r["name"].removeprefix("${local.prefix}") for r in declared.values()}
    for service in {a[0] for a in acls}:
        assert all(may(acls, service, "Describe", "Topic", n) for n in names), service


def test_every_service_has_a_quota_from_variables_main_tf_declares() -> None:
    doc = committed()
    assert doc["locals"]["services"] == [*PROCESSORS, "venues", "projector", "api"]
    quota = doc["resource"]["kafka_quota"]["service"]
    assert quota["entity_type"] == "user"
    assert quota["for_each"] == "${toset(local.services)}"
    main = (TERRAFORM / "main.tf").read_text()
    for var in set(re.findall(r"var\.(\w+)", json.dumps(doc))):
        assert f'variable "{var}"' in main, var
    acl = doc["resource"]["kafka_acl"]["service"]
    assert acl["acl_principal"] == "User:${var.principal_prefix}${each.value.service}"
    assert acl["acl_permission_type"] == "Allow"


def topics_used(paths: list[Path]) -> set[str]:
    """The topics the modules at `paths` import from `meltica.topics`."""
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "meltica.topics":
                for alias in node.names:
                    value = getattr(topics, alias.name)
                    if isinstance(value, str):
                        found.add(value)
                    elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
                        found.update(value)
    return found


@pytest.mark.parametrize(
    ("service", "modules"),
    [
        ("api", [*(SRC / "api").rglob("*.py"), SRC / "control" / "reload.py"]),
        (
            "venues",
            [SRC / "control" / "venues.py", SRC / "venues" / "gateway.py", SRC / "marketdata" / "formats.py"],
        ),
        ("projector", [SRC / "projections" / "projector.py"]),
    ],
)
def test_a_process_is_granted_every_topic_its_modules_use(service: str, modules: list[Path]) -> None:
    """A topic newly used by the API, the venue registry or the projector fails here until granted."""
    declared = next(s for s in services() if s.name == service)
    assert topics_used(modules) <= set(declared.reads) | set(declared.writes)


def test_the_gateway_group_is_under_the_granted_prefix() -> None:
    log = MemoryLog()
    gateway = Gateway("bn-1", SimpleNamespace(venue="BINANCE"), log, Codec(), "ACC-1")  # type: ignore[arg-type]
    assert gateway.group.startswith(GATEWAY_GROUP_PREFIX)
