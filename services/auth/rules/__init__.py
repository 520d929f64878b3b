"""Pure decisions of the auth service: no I/O, time passed in."""
