"""Alerting gauges, read from Redis before each scrape like the drift gauges, so every
replica serves the same answer: the notification outbox (depth, age of the oldest
pending notification) and one series per pending or firing alert.

Two ways in, both through Metrics: the alert sink pushes a model's active alerts after
each run (`set_alert_states`), and, with sources attached, the /metrics route awaits
`refresh_alerts` before rendering, which reads every model's alerts and the outbox
from Redis and replaces what was pushed. Without sources the outbox reads as empty and
the alerts are those this process pushed (a replica that stopped running a model would
keep its last ones): attach the sources in production. The per-process delivery
counters live in service/metrics.py."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# exported states; inactive and resolved alerts have no series
ACTIVE_STATES = ("firing", "pending")


class OutboxStats(Protocol):
    """What the gauges read of the notification outbox (core.stores.outbox.Outbox)."""

    async def depth(self) -> int:
        """Notifications pending delivery (waiting, leased or between retries)."""
        ...

    async def oldest_created_at(self) -> float | None:
        """created_at (unix seconds) of the oldest pending notification; None if empty."""
        ...


class AlertSeries(Protocol):
    """One alert as the gauge needs it; core.alerts.AlertState has these fields."""

    @property
    def model(self) -> str: ...

    @property
    def rule(self) -> str: ...

    @property
    def column(self) -> str | None: ...

    @property
    def state(self) -> str: ...


class AlertStateSource(Protocol):
    """Where the alert series are read (core.stores.alerts.AlertStore)."""

    async def list(
        self, model: str | None = None, states: Collection[str] | None = None
    ) -> Sequence[AlertSeries]:
        """Stored alerts of one model or (None) all, only those whose state is in
        `states` when given."""
        ...


class AlertsCollector(Collector):
    """Outbox gauges and `driftmon_alerts{model, rule, column, state}`.

    The alert series are capped per model (`max_per_model`, the per-column cap): a rule
    with `column: "*"` on a wide model would otherwise export one series per column.
    Firing alerts go first, then pending ones, each by rule and column."""

    def __init__(self, max_per_model: int) -> None:
        self._max_per_model = max_per_model
        self._outbox: OutboxStats | None = None
        self._source: AlertStateSource | None = None
        self._depth = 0
        self._oldest_age = 0.0
        self._alerts: dict[str, list[tuple[str, str, str]]] = {}

    def attach(self, outbox: OutboxStats | None, alerts: AlertStateSource | None) -> None:
        self._outbox = outbox
        self._source = alerts

    async def refresh(self, now: float) -> None:
        """Reads the attached sources for the next scrape; `now` in unix seconds."""
        if self._outbox is not None:
            depth = await self._outbox.depth()
            oldest = await self._outbox.oldest_created_at()
            self.update_outbox(depth, None if oldest is None else max(0.0, now - oldest))
        if self._source is not None:
            self.update_alerts(await self._source.list(states=ACTIVE_STATES))

    def update_outbox(self, depth: int, oldest_age_seconds: float | None) -> None:
        self._depth = depth
        self._oldest_age = oldest_age_seconds or 0.0

    def update_alerts(self, alerts: Iterable[AlertSeries]) -> None:
        """Every model's alerts at once: models left out have none."""
        by_model: dict[str, list[tuple[str, str | None, str]]] = {}
        for alert in alerts:
            by_model.setdefault(alert.model, []).append((alert.rule, alert.column, alert.state))
        self._alerts = {}
        for model, states in by_model.items():
            self.set_model(model, states)

    def set_model(self, model: str, states: Iterable[tuple[str, str | None, str]]) -> None:
        """One model's alerts as (rule, column, state); inactive and resolved ones and
        an empty list leave it without series."""
        series = [
            (rule, column or "", state) for rule, column, state in states if state in ACTIVE_STATES
        ]
        if series:
            self._alerts[model] = self._capped(series)
        else:
            self._alerts.pop(model, None)

    def forget_model(self, model: str) -> None:
        self._alerts.pop(model, None)

    def _capped(self, series: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        def priority(item: tuple[str, str, str]) -> tuple[int, str, str]:
            rule, column, state = item
            return (ACTIVE_STATES.index(state), rule, column)

        return sorted(set(series), key=priority)[: self._max_per_model]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "driftmon_alert_outbox_depth",
            "Alert notifications pending delivery in the outbox (all channels).",
            value=self._depth,
        )
        yield GaugeMetricFamily(
            "driftmon_alert_outbox_oldest_age_seconds",
            "Age of the oldest notification pending delivery; 0 when the outbox is empty.",
            value=self._oldest_age,
        )
        alerts = GaugeMetricFamily(
            "driftmon_alerts",
            "1 for each pending or firing driftmon alert (column empty for rules without one).",
            labels=["model", "rule", "column", "state"],
        )
        for model, series in self._alerts.items():
            for rule, column, state in series:
                alerts.add_metric([model, rule, column, state], 1.0)
        yield alerts

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []
