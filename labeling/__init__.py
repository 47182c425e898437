"""driftmon labeling."""
