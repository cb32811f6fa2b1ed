"""The Kafka topics as Terraform (JSON syntax, provider `Mongey/kafka`), from `meltica.topics`.

`deploy/terraform/topics.tf.json` is this module's output, committed; a test regenerates it
and compares, so `meltica topics create` and Terraform never disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any

from meltica.topics import topic_specs


def resource_name(topic: str) -> str:
    """A Terraform identifier for `topic` (`orders.events.dlq` -> `orders_events_dlq`)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", topic)


def topics_document() -> dict[str, Any]:
    """Every topic (and dead-letter topic) as a `kafka_topic` resource.

    Partitions and replication come from variables; the retention and cleanup policy of each
    topic are fixed here, as in `meltica topics create`.
    """
    resources = {
        resource_name(spec.name): {
            "name": f"${{local.prefix}}{spec.name}",
            "partitions": "${var.partitions}",
            "replication_factor": "${var.replication_factor}",
            "config": dict(sorted(spec.config.items())),
        }
        for spec in topic_specs(1)
    }
    return {"resource": {"kafka_topic": resources}}


def render() -> str:
    """The committed file's text."""
    return json.dumps(topics_document(), indent=2, sort_keys=True) + "\n"
