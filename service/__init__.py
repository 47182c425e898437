"""The top floor: settings, app factory and lifespan, HTTP routes, scheduler, executor,
metrics (the first run sink), CLI, demo and the embedded Redis."""
