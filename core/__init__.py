"""The ground floor: types, model config, Redis client, key layout and stores.

Imports nothing else of the project."""
