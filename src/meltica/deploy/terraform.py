"""The Kafka topics, ACLs and quotas as Terraform (JSON syntax, provider `Mongey/kafka`).

`deploy/terraform/topics.tf.json` (from `meltica.topics`) and `deploy/terraform/acls.tf.json` (from
`meltica.deploy.access`) are this module's output, committed; a test regenerates them and
compares, so `meltica topics create`, the services and Terraform never disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any

from meltica.deploy.access import Grant, all_grants, services
from meltica.events.registry import SCHEMAS_TOPIC
from meltica.topics import topic_specs

CLIENT_ID = "${var.client_id}"  # the client id of the processes, as Terraform spells it


def resource_name(topic: str) -> str:
    """A Terraform identifier for `topic` (`orders.events.dlq` -> `orders_events_dlq`)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", topic)


def topics_document() -> dict[str, Any]:
    """Every topic (and dead-letter topic) as a `kafka_topic` resource.

    Partitions and replication come from variables; the retention and cleanup policy of each
    topic are fixed here, as in `meltica topics create`.
    """
    resources: dict[str, dict[str, Any]] = {
        resource_name(spec.name): {
            "name": f"${{local.prefix}}{spec.name}",
            "partitions": "${var.partitions}",
            "replication_factor": "${var.replication_factor}",
            "config": dict(sorted(spec.config.items())),
        }
        for spec in topic_specs(1)
    }
    resources[resource_name(SCHEMAS_TOPIC)] = {  # the embedded schema registry's: one partition
        "name": f"${{local.prefix}}{SCHEMAS_TOPIC}",
        "partitions": 1,
        "replication_factor": "${var.replication_factor}",
        "config": {"cleanup.policy": "compact"},
    }
    return {"resource": {"kafka_topic": resources}}


def render() -> str:
    """The committed topics file's text."""
    return json.dumps(topics_document(), indent=2, sort_keys=True) + "\n"


def acl_key(grant: Grant) -> str:
    """A grant's stable key in the ACL map (`risk Read Topic Literal orders.commands`)."""
    name = grant.name.text.replace(CLIENT_ID, "client_id")
    return " ".join((grant.service, grant.operation, grant.resource, grant.pattern, name))


def acl_entry(grant: Grant) -> dict[str, Any]:
    """What the `kafka_acl` resource of `grant` is made from."""
    return {
        "service": grant.service,
        "operation": grant.operation,
        "type": grant.resource,
        "pattern": grant.pattern,
        "name": grant.name.text,
        "namespaced": grant.name.namespaced,
    }


_PRINCIPAL = "${var.principal_prefix}"


def acls_document() -> dict[str, Any]:
    """Every service's ACLs (one `kafka_acl` per entry of `local.acls`) and its quota."""
    acls = {acl_key(g): acl_entry(g) for g in all_grants(services(CLIENT_ID))}
    rates = (
        "{producer_byte_rate = var.quota_producer_byte_rate, "
        "consumer_byte_rate = var.quota_consumer_byte_rate, "
        "request_percentage = var.quota_request_percentage}"
    )
    return {
        "locals": {"acls": dict(sorted(acls.items())), "services": [s.name for s in services()]},
        "resource": {
            "kafka_acl": {
                "service": {
                    "for_each": "${local.acls}",
                    "acl_principal": f"User:{_PRINCIPAL}${{each.value.service}}",
                    "acl_host": "*",
                    "acl_operation": "${each.value.operation}",
                    "acl_permission_type": "Allow",
                    "resource_type": "${each.value.type}",
                    "resource_name": '${each.value.namespaced ? local.prefix : ""}${each.value.name}',
                    "resource_pattern_type_filter": "${each.value.pattern}",
                }
            },
            "kafka_quota": {
                "service": {
                    "for_each": "${toset(local.services)}",
                    "entity_type": "user",
                    "entity_name": f"{_PRINCIPAL}${{each.key}}",
                    "config": f"${{merge({rates}, lookup(var.quota_overrides, each.key, {{}}))}}",
                }
            },
        },
    }


def render_acls() -> str:
    """The committed ACL file's text: one line per ACL, so a review reads them as a list."""
    doc = acls_document()
    acls = doc["locals"].pop("acls")
    text = json.dumps(doc, indent=2, sort_keys=True)
    lines = ",\n".join(
        f"      {json.dumps(key)}: {json.dumps(entry, sort_keys=True)}" for key, entry in acls.items()
    )
    head = '  "locals": {\n'
    return text.replace(head, head + '    "acls": {\n' + lines + "\n    },\n", 1) + "\n"
