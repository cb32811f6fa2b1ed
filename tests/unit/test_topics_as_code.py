"""`meltica topics create` and deploy/terraform declare the same topics."""

from __future__ import annotations

import json
from pathlib import Path

from meltica.deploy.terraform import render, resource_name
from meltica.topics import TOPICS, dead_letter_topic, topic_specs

TERRAFORM = Path(__file__).resolve().parents[2] / "deploy" / "terraform"


def test_committed_terraform_is_generated_from_the_topic_table() -> None:
    committed = (TERRAFORM / "topics.tf.json").read_text()
    assert committed == render(), "run: meltica topics terraform > deploy/terraform/topics.tf.json"


def test_terraform_declares_every_topic_with_its_config() -> None:
    declared = json.loads((TERRAFORM / "topics.tf.json").read_text())["resource"]["kafka_topic"]
    specs = topic_specs(4)
    assert len(declared) == len(specs) + 1  # and the embedded schema registry's topic
    assert declared["_schemas"]["name"] == "${local.prefix}_schemas"
    for spec in specs:
        resource = declared[resource_name(spec.name)]
        assert resource["name"] == "${local.prefix}" + spec.name
        assert resource["config"] == dict(spec.config)
        assert resource["partitions"] == "${var.partitions}"
    for topic in TOPICS:
        assert (resource_name(dead_letter_topic(topic.name)) in declared) == topic.dead_letters


def test_retention_fits_event_sourcing() -> None:
    by_name = {t.name: t.config for t in TOPICS}
    for name in ("orders.commands", "orders.events", "portfolio.events", "risk.events", "venue.reports"):
        assert by_name[name]["retention.ms"] == "-1"
    assert by_name["instruments"]["cleanup.policy"] == "compact"
    assert int(by_name["marketdata.quotes"]["retention.ms"]) > 0


def test_main_tf_defines_what_the_topics_use() -> None:
    main = (TERRAFORM / "main.tf").read_text()
    for name in ("partitions", "replication_factor", "namespace"):
        assert f'variable "{name}"' in main
    assert "prefix" in main
    assert "Mongey/kafka" in main
