"""Pure decisions of the processor: values in, decisions out, no I/O."""
