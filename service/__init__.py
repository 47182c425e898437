"""driftmon service: settings, app factory, HTTP routes, Redis, scheduler, metrics, CLI."""
