"""Collect: prediction logs in over HTTP, Redis Streams and CloudEvents, validated against
the model's schema and handed to core's stores. Never imports detectors/."""
