"""The whole pipeline measured and broken from outside: harness, records, accounting, plots."""
