"""Pure decisions of the simulator: no I/O, no clocks of their own."""
