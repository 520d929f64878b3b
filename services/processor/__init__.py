"""The processor: triggers.raw -> routed, resolved, deduplicated email requests (faust)."""
