"""Sample data bundled with driftmon: a synthetic credit-risk model for the demo and docs."""
