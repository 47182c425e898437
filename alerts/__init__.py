"""driftmon alerts."""
