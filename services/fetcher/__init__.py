"""The pipelined equivalent: upstream pipeline stream -> triggers.raw, exactly once."""
