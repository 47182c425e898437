"""The monitor-stale rule: the one rule judged on every run, ok or not. It is bad once no
ok run has started for `intervals` schedule intervals (counted from the model's first
sighting when it never had one), and good again with the next ok run."""

from __future__ import annotations

from alerts.rules_common import RunContext, seen
from core.alert_config import MonitorStaleRule
from core.alerts import Observation, Verdict
from core.results import RunResult


def monitor_stale(rule: MonitorStaleRule, run: RunResult, context: RunContext) -> Observation:
    limit = rule.intervals * context.schedule_seconds
    if run.status == "ok":
        return seen(rule, "good", "an ok run arrived", 0.0, limit)
    anchor = context.last_ok_at if context.last_ok_at is not None else context.monitored_since
    elapsed = context.now - (anchor if anchor is not None else context.now)
    since = "ever" if context.last_ok_at is None else f"for {_duration(elapsed)}"
    summary = f"no ok run {since} (limit {rule.intervals} intervals); latest run {run.status}"
    # without a schedule there is no interval to miss
    verdict: Verdict = "bad" if limit > 0 and elapsed >= limit else "unknown"
    return seen(rule, verdict, summary, elapsed, limit)


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m"
