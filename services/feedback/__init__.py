"""The feedback service: what recipients send back (unsubscribes, bounces, complaints)."""
