"""Operator commands: topics, database, configuration, the local stack, replay."""
