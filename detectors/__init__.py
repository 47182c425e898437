"""Detect: windows from core's stores compared with the model's reference (Evidently's
tests, data quality, performance, multivariate shift), off the event loop, stored as a
RunResult and handed to the run sinks. Never imports collectors/."""
