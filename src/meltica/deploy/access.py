"""Who may do what on the Kafka cluster: each service's principal and its least-privilege ACLs.

Every grant is derived from what the code declares: a processor's topics from the topology (its
inputs, outputs, the dead letters of its inputs, its journal and snapshots), the other processes'
topics from the modules that read and write them. `deploy.terraform` renders these as the
`kafka_acl` resources of `deploy/terraform/acls.tf.json`; a test checks each service can do
exactly what it does.

Kafka's `Read` and `Write` imply `Describe`, so a topic read or written needs no `Describe` of its
own. Every service may `Describe` every Meltica topic: on start it lists the topics to create
the missing ones (`bootstrap.build_missing_topics`), and a topic it cannot see it would try to create.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from meltica.events.registry import SCHEMAS_TOPIC
from meltica.topics import (
    AUDIT,
    CONTROL_EVENTS,
    INSTRUMENTS,
    MARKET_DATA,
    ORDER_COMMANDS,
    PORTFOLIO_COMMANDS,
    RISK_COMMANDS,
    STRATEGY_COMMANDS,
    VENUE_COMMANDS,
    VENUE_EVENTS,
    VENUE_REPORTS,
    VENUE_REQUESTS,
    dead_letter_topic,
    journal_topic,
    snapshot_topic,
    topic_specs,
)
from meltica.topology import NODES, Node

DEFAULT_CLIENT_ID = "meltica"  # `Settings.client_id`: the client id (and transactional id prefix) of
# the venues, projector and api processes
GATEWAY_GROUP_PREFIX = "meltica-gateway-"  # `Gateway.group`: one group per live-venue connection
CLUSTER = "kafka-cluster"  # the name of Kafka's one cluster resource


@dataclass(frozen=True, slots=True, order=True)
class Name:
    """A resource's name; `namespaced` ones are prefixed on the cluster by `MELTICA_NAMESPACE`."""

    text: str
    namespaced: bool = True


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One ACL: `service` may do `operation` on the `resource` called `name` (or every `Prefixed` one)."""

    service: str
    resource: str  # Topic | Group | TransactionalID | Cluster (the provider's spelling)
    name: Name
    pattern: str  # Literal | Prefixed
    operation: str  # Read | Write | Create | Describe | IdempotentWrite


@dataclass(frozen=True, slots=True)
class Service:
    """A process that talks to Kafka under its own principal, and what it does there."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    groups: tuple[Name, ...] = ()  # consumer groups it joins or commits offsets in (Literal)
    group_prefixes: tuple[Name, ...] = ()  # ... whose names start with these (one per connection)
    reader_groups: tuple[Name, ...] = ()  # prefixes of its assign-only readers' groups (no commits)
    transactional_ids: tuple[Name, ...] = ()  # prefixes of its transactional producers' ids
    creates: tuple[str, ...] = (SCHEMAS_TOPIC,)  # the embedded schema registry creates its topic on start
    doc: str = field(default="", compare=False)


def _unique(topics: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(topics)))


def processor_service(node: Node, client_id: str = DEFAULT_CLIENT_ID) -> Service:
    """`meltica run <node>`: its inputs and outputs, its inputs' dead letters, its journal and
    snapshots; group `meltica-<node>`; transactional ids `<node>-...` (`--instance` must start so)."""
    own = (journal_topic(node.name), snapshot_topic(node.name), SCHEMAS_TOPIC)
    return Service(
        node.name,
        reads=_unique((*node.inputs, *own)),
        writes=_unique((*node.outputs, *own, *(dead_letter_topic(t) for t in node.inputs))),
        groups=(Name(f"meltica-{node.name}"),),
        reader_groups=(
            Name(f"meltica-{node.name}-broadcast-"),  # the broadcast reader, outside the group
            Name(f"meltica-{node.name}-reader-reader-", namespaced=False),  # the host's KafkaLog reader
            Name(f"{client_id}-reader-", namespaced=False),  # the process's KafkaLog reader (schemas)
        ),
        transactional_ids=(Name(f"{node.name}-"),),
        doc=node.doc,
    )


def venues_service(client_id: str = DEFAULT_CLIENT_ID) -> Service:
    """`meltica run venues`: the venue registry (market data, instruments, connection states) and the
    live venues' gateways (venue requests in; reports and the venue's balances out; one group and
    transaction per connection)."""
    from meltica.marketdata.formats import TOPIC_OF

    published = (*TOPIC_OF.values(), VENUE_EVENTS, VENUE_REPORTS, PORTFOLIO_COMMANDS)  # venue balances
    return Service(
        "venues",
        reads=_unique(
            (VENUE_COMMANDS, VENUE_EVENTS, *MARKET_DATA, VENUE_REQUESTS, VENUE_REPORTS, SCHEMAS_TOPIC)
        ),
        writes=_unique((*published, SCHEMAS_TOPIC)),
        group_prefixes=(Name(GATEWAY_GROUP_PREFIX),),
        reader_groups=(Name(f"{client_id}-reader-", namespaced=False),),
        transactional_ids=(Name(f"{client_id}-", namespaced=False),),
        doc="market-data connections and live-venue gateways",
    )


def projector_service(client_id: str = DEFAULT_CLIENT_ID) -> Service:
    """`meltica run projector`: reads what it projects (its positions are kept in the database)."""
    from meltica.projections.projector import TOPICS

    return Service(
        "projector",
        reads=_unique((*TOPICS, SCHEMAS_TOPIC)),
        writes=(SCHEMAS_TOPIC,),  # the codec registers the catalog's schemas on start
        reader_groups=(Name(f"{client_id}-reader-", namespaced=False),),
        doc="the log into the SQL read models",
    )


def api_service(client_id: str = DEFAULT_CLIENT_ID) -> Service:
    """`meltica run api`: commands and the audit trail out; event streams and the last applied
    configuration in; the configuration file's instruments and commands out (`control.reload`)."""
    from meltica.api.stream import KINDS

    commands = (ORDER_COMMANDS, RISK_COMMANDS, STRATEGY_COMMANDS, VENUE_COMMANDS)
    return Service(
        "api",
        reads=_unique((*KINDS.values(), CONTROL_EVENTS, SCHEMAS_TOPIC)),
        writes=_unique((*commands, AUDIT, CONTROL_EVENTS, INSTRUMENTS, SCHEMAS_TOPIC)),
        reader_groups=(Name(f"{client_id}-reader-", namespaced=False),),
        doc="the REST API",
    )


def services(client_id: str = DEFAULT_CLIENT_ID) -> tuple[Service, ...]:
    """Every service with a principal: the topology's processors (and the fused `pipeline`), then
    the other processes."""
    return (
        *(processor_service(n, client_id) for n in NODES.values()),
        venues_service(client_id),
        projector_service(client_id),
        api_service(client_id),
    )


def cluster_topics() -> tuple[str, ...]:
    """Every topic the system keeps on the cluster (dead letters and the schema topic included)."""
    return _unique((*(s.name for s in topic_specs(1)), SCHEMAS_TOPIC))


def grants(service: Service) -> list[Grant]:
    """The least-privilege ACLs of `service`, sorted."""
    s = service.name
    out = [Grant(s, "Topic", Name(t), "Literal", "Read") for t in service.reads]
    out += [Grant(s, "Topic", Name(t), "Literal", "Write") for t in service.writes]
    seen = set(service.reads) | set(service.writes)
    out += [Grant(s, "Topic", Name(t), "Literal", "Describe") for t in cluster_topics() if t not in seen]
    out += [Grant(s, "Topic", Name(t), "Literal", "Create") for t in service.creates]
    out += [Grant(s, "Group", g, "Literal", "Read") for g in service.groups]
    out += [Grant(s, "Group", g, "Prefixed", "Read") for g in service.group_prefixes]
    out += [Grant(s, "Group", g, "Prefixed", "Describe") for g in service.reader_groups]
    out += [Grant(s, "TransactionalID", t, "Prefixed", "Write") for t in service.transactional_ids]
    if service.writes:  # brokers before 3.0 ask it of every idempotent producer
        out.append(Grant(s, "Cluster", Name(CLUSTER, namespaced=False), "Literal", "IdempotentWrite"))
    return sorted(out)


def all_grants(chosen: Sequence[Service] | None = None) -> list[Grant]:
    """The ACLs of every service, sorted by service."""
    return [g for svc in (services() if chosen is None else chosen) for g in grants(svc)]
