"""Pure decisions of the fetcher."""
