"""Test helpers shared by several suites (unit, integration), with no fixtures of their own."""
