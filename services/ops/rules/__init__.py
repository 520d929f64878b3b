"""Pure decisions of the operator commands."""
