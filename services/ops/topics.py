"""`triggerline topics`: apply the topic declaration to the cluster, idempotently."""

from __future__ import annotations

import argparse

from services.common.kafka import ensure_topics, make_admin
from services.common.pipeline_config import load_pipeline_config
from services.common.settings import KafkaSettings, PipelineConfigSettings, load
from services.common.topics import TopicSpec, topics


def declared_topics(campaigns: list[str]) -> list[TopicSpec]:
    """Fixed topics plus one result topic per campaign."""
    return [*topics().fixed(), *(topics().emails(name) for name in campaigns)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline topics")
    parser.add_argument("action", choices=["create", "list"])
    parser.add_argument("--replication-factor", type=int, default=1)
    args = parser.parse_args(argv)
    pipeline = load_pipeline_config(load(PipelineConfigSettings).config)
    specs = declared_topics(sorted(pipeline.campaigns))
    if args.action == "list":
        for spec in specs:
            retention = "forever" if spec.retention is None else f"{spec.retention}"
            print(f"{spec.name:50} {spec.partitions:3}  {spec.cleanup_policy:8} {retention}")
        return 0
    created = ensure_topics(make_admin(load(KafkaSettings)), specs, args.replication_factor)
    for name in created:
        print(f"created {name}")
    print(f"{len(specs)} topics declared, {len(created)} created")
    return 0
