"""Triggerline: behavioural triggers to personalised email, on Apache Kafka."""
