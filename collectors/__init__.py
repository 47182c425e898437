"""driftmon collectors."""
