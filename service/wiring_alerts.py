"""The alert collaborators built from Settings and the models YAML: the channels (their
secrets read from the environment now, so a missing one fails the start), the alerts run
sink (with the labeling loop's annotator agreement for its annotator rules), and the
dispatcher that empties the outbox."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import httpx

from alerts.channels import Channel, build_channels
from alerts.dispatcher import Dispatcher
from alerts.dispatcher_settings import DispatcherSettings
from alerts.lifecycle import LifecyclePolicy
from alerts.notify import Links
from alerts.sink import AlertSink, AlertSinkParts, ModelAlerting
from core.alert_config import AlertChannel, AlertRule
from core.clock import Clock
from core.config import ModelConfig
from core.stores import Stores
from service.config import Settings
from service.labeling_agreements import LabelingAgreements
from service.metrics import Metrics

# Alertmanager forgets a firing alert not re-sent before its endsAt: runs re-send them,
# so this many schedule intervals without a run let it lapse
ALERTMANAGER_RESOLVE_INTERVALS = 3


class AlertConfigError(ValueError):
    """The alert rules name a channel that is not configured (or a name is repeated)."""


def alert_channels(settings: Settings, from_file: Sequence[AlertChannel]) -> list[AlertChannel]:
    channels = [*settings.alert_channels, *from_file]
    names = [channel.name for channel in channels]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise AlertConfigError(
            f"alert channel names must be unique across DRIFTMON_ALERT_CHANNELS and the "
            f"models file's `channels:`; repeated: {repeated}"
        )
    return channels


def check_routes(
    settings: Settings, model_configs: Mapping[str, ModelConfig], channels: Sequence[AlertChannel]
) -> None:
    """Every channel a rule routes to exists, checked at start with the rule's path."""
    known = {channel.name for channel in channels}
    sources: list[tuple[str, Sequence[AlertRule]]] = [
        ("DRIFTMON_ALERT_RULES", settings.alert_rules)
    ]
    sources += [
        (f"models[{name}].alerts", config.alerts)
        for name, config in model_configs.items()
        if config.alerts is not None
    ]
    for where, rules in sources:
        for index, rule in enumerate(rules):
            missing = sorted(set(rule.channels or ()) - known)
            if missing:
                raise AlertConfigError(
                    f"{where}[{index}] ({rule.name}).channels: unknown channel(s) {missing}; "
                    f"configured: {sorted(known)}"
                )


def open_channels(
    settings: Settings, configs: Sequence[AlertChannel], environ: Mapping[str, str] | None = None
) -> dict[str, Channel]:
    resolve = ALERTMANAGER_RESOLVE_INTERVALS * settings.schedule_seconds
    return build_channels(
        configs, os.environ if environ is None else environ, resolve_timeout_seconds=resolve
    )


def public_url(settings: Settings) -> str:
    if settings.public_url is not None:
        return str(settings.public_url)
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    return f"http://{host}:{settings.port}"


def alert_sink(
    settings: Settings,
    stores: Stores,
    clock: Clock,
    metrics: Metrics,
    alerting_for: Callable[[str], ModelAlerting],
    channels: Sequence[AlertChannel],
) -> AlertSink:
    # the labeling audit adapted for the annotator-agreement rules; the labeling gauges
    # read the same, at each scrape, from Redis (every replica agrees)
    agreements = LabelingAgreements(stores.label_queue, stores.registry)
    metrics.attach_labeling_sources(agreements)
    parts = AlertSinkParts(
        states=stores.alerts,
        outbox=stores.outbox,
        runs=stores.runs,
        models=stores.registry,
        gauges=metrics,
        agreements=agreements,
    )
    policy = LifecyclePolicy(
        fire_after=settings.alert_fire_after,
        resolve_after=settings.alert_resolve_after,
        repeat_seconds=settings.alert_repeat_seconds,
        resolved_keep_seconds=settings.alert_resolved_keep_seconds,
    )
    return AlertSink(
        parts,
        alerting_for,
        channels,
        policy,
        Links(public_url(settings)),
        clock,
        max_columns=settings.alert_max_columns,
    )


def dispatcher(
    settings: Settings,
    stores: Stores,
    channels: Mapping[str, Channel],
    http: httpx.AsyncClient,
    clock: Clock,
    metrics: Metrics,
) -> Dispatcher:
    hosts = settings.alert_allowed_hosts
    return Dispatcher(
        stores.outbox,
        channels,
        http,
        clock,
        metrics,
        DispatcherSettings(
            batch_size=DISPATCH_BATCH,
            concurrency=settings.alert_dispatch_concurrency,
            poll_seconds=settings.alert_dispatch_poll_seconds,
            timeout_seconds=settings.alert_timeout_seconds,
            lease_seconds=_lease_seconds(settings),
            backoff_base_seconds=settings.alert_backoff_base_seconds,
            backoff_cap_seconds=settings.alert_backoff_cap_seconds,
            max_age_seconds=settings.alert_max_age_seconds,
            allowed_hosts=None if hosts is None else frozenset(hosts),
        ),
    )


DISPATCH_BATCH = 100


def _lease_seconds(settings: Settings) -> float:
    """Long enough for one channel's share of a batch at its timeout, one after another:
    a lease that ran out mid-send would let another replica send the same notification."""
    rounds = DISPATCH_BATCH / settings.alert_dispatch_concurrency + 2
    return max(120.0, rounds * settings.alert_timeout_seconds)
