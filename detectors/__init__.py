"""driftmon detectors."""
