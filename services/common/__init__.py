"""Plumbing shared by the services: settings, Kafka, serde, topics, health, database."""
