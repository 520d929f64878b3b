"""Pure decisions of the feedback service: tokens, reports, bounces, suppressions. No I/O."""
