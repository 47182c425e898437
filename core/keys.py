"""The Redis key layout. Per-model keys carry the model in a hash tag so that a
Redis Cluster keeps one model's keys in one slot."""

from __future__ import annotations

import re

# characters that Redis' glob-style MATCH patterns treat specially
GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def models(self) -> str:
        return f"{self.prefix}models"

    # the CloudEvents join keys share one hash tag: the join script touches two keys,
    # which a Redis Cluster allows only within one slot
    def ce_pending(self, source: str, correlation_id: str) -> str:
        """Hash: the waiting half of one (source, correlation id)."""
        return f"{self.prefix}{{ce}}:pending:{source}|{correlation_id}"

    def ce_expiries(self) -> str:
        """Sorted set: "model|pending key" scored by when that half expires."""
        return f"{self.prefix}{{ce}}:expiries"

    def dead_letters(self, stream: str) -> str:
        """Stream: entries of a consumed stream that could not be stored, with why."""
        return f"{self.prefix}deadletter:{stream}"

    def _m(self, model: str, suffix: str) -> str:
        return f"{self.prefix}{{{model}}}:{suffix}"

    def model_pattern(self, model: str) -> str:
        """SCAN MATCH pattern of every key of one model: all under its hash tag (the
        prefix and the name matched literally)."""
        return GLOB_SPECIAL.sub(r"\\\1", self._m(model, "")) + "*"

    def model(self, model: str) -> str:
        """Hash: schema, active reference version."""
        return self._m(model, "model")

    def events(self, model: str) -> str:
        """Stream of accepted events, ids in ingest-time order."""
        return self._m(model, "events")

    def events_index(self, model: str) -> str:
        """Sorted set: event block id scored by the running event count at its end."""
        return self._m(model, "events:index")

    def events_seen(self, model: str) -> str:
        """Sorted set: every accepted event id scored by its ingest time in ms, the
        idempotency record; ids older than the retention age are trimmed."""
        return self._m(model, "seen")

    def labels(self, model: str) -> str:
        """Hash: event id -> ground truth (JSON)."""
        return self._m(model, "labels")

    def labels_index(self, model: str) -> str:
        """Sorted set: labelled event id scored by the event's ingest time in seconds
        (labels stored before that change: by the label's arrival), for window reads and
        expiry."""
        return self._m(model, "labels:index")

    def references(self, model: str) -> str:
        """Hash: version -> metadata JSON."""
        return self._m(model, "refs")

    def reference_data(self, model: str, version: str) -> str:
        """Parquet bytes of one reference version."""
        return self._m(model, f"ref:{version}")

    def runs(self, model: str) -> str:
        """Hash: run id -> RunResult JSON."""
        return self._m(model, "runs")

    def runs_index(self, model: str) -> str:
        """Sorted set: run id scored by start time."""
        return self._m(model, "runs:index")

    def runs_latest(self, model: str) -> str:
        """Hash: "any" and "ok" -> the newest run id of each."""
        return self._m(model, "runs:latest")

    def rejects(self, model: str, minute: int) -> str:
        """Hash: "reason|field" -> records rejected in that minute."""
        return self._m(model, f"rejects:{minute}")

    def kpi_names(self, model: str) -> str:
        return self._m(model, "kpis")

    def kpi(self, model: str, name: str) -> str:
        """Sorted set of one KPI's points, scored by their time."""
        return self._m(model, f"kpi:{name}")

    def report(self, model: str, run_id: str) -> str:
        return self._m(model, f"report:{run_id}")

    def run_lease(self, model: str, tick: int) -> str:
        """Held by the one replica that runs this model's detection for this tick."""
        return self._m(model, f"lease:{tick}")

    # alert states, silences and the notification outbox share one hash tag: one MULTI
    # (or script) writes a state change and its notifications together
    def _alerts(self, suffix: str) -> str:
        return f"{self.prefix}{{alerts}}:{suffix}"

    def alert_states(self, model: str) -> str:
        """Hash: alert id -> AlertState JSON, one model's alerts."""
        return self._alerts(f"states:{model}")

    def alert_judged(self, model: str) -> str:
        """String: the start time (unix s) of the model's newest run whose alerts were
        judged (one key per model: judges of other models never conflict)."""
        return self._alerts(f"judged:{model}")

    def alert_models(self) -> str:
        """Set: the models that have (or had) alert states, for listing them all."""
        return self._alerts("models")

    def silences(self) -> str:
        """Hash: silence id -> Silence JSON."""
        return self._alerts("silences")

    def silence_expiries(self) -> str:
        """Sorted set: silence id scored by when it ends (unix seconds)."""
        return self._alerts("silences:until")

    def outbox_items(self) -> str:
        """Hash: pending notification id -> Notification JSON as enqueued."""
        return self._alerts("outbox:items")

    def outbox_attempts(self) -> str:
        """Hash: pending notification id -> delivery attempts so far."""
        return self._alerts("outbox:attempts")

    def outbox_errors(self) -> str:
        """Hash: pending notification id -> the last attempt's error."""
        return self._alerts("outbox:errors")

    def outbox_members(self) -> str:
        """Hash: pending notification id -> its member in the outbox queue."""
        return self._alerts("outbox:members")

    def outbox_queue(self) -> str:
        """Sorted set, all scores 0: "order key NUL sequence NUL id" of every pending
        notification; lexical order keeps each order key's in enqueue order."""
        return self._alerts("outbox:queue")

    def outbox_due(self) -> str:
        """Sorted set: the head of each order key scored by its next attempt time."""
        return self._alerts("outbox:due")

    def outbox_sequence(self) -> str:
        """Counter: enqueue order."""
        return self._alerts("outbox:seq")

    def outbox_created(self) -> str:
        """Sorted set: pending notification id scored by its created_at."""
        return self._alerts("outbox:created")

    def outbox_dead(self) -> str:
        """List, newest first: dead-lettered notifications (JSON), capped."""
        return self._alerts("outbox:dead")

    # the labeling queue: one model's tasks, claims and annotations, all under the model's
    # hash tag, so that each of its scripts touches one slot
    def label_tasks(self, model: str) -> str:
        """Hash: task id -> LabelTask JSON as queued (open, no annotations, no gold)."""
        return self._m(model, "label:tasks")

    def label_meta(self, model: str) -> str:
        """Hash: task id -> {"e": event id, "k": annotations required, "r": reasons}."""
        return self._m(model, "label:meta")

    def label_gold(self, model: str) -> str:
        """Hash: task id -> the known answer (JSON) of a gold task."""
        return self._m(model, "label:gold")

    def label_open(self, model: str) -> str:
        """Sorted set: open task id scored by priority."""
        return self._m(model, "label:open")

    def label_adjudication(self, model: str) -> str:
        """Sorted set: id of a task awaiting an adjudicator, scored by priority."""
        return self._m(model, "label:adjudication")

    def label_done(self, model: str) -> str:
        """Sorted set: done task id scored by when it was settled."""
        return self._m(model, "label:done")

    def label_events(self, model: str) -> str:
        """Hash: event id -> its task id (an evicted task frees its event id)."""
        return self._m(model, "label:events")

    def label_annotations(self, model: str) -> str:
        """Hash: task id -> its annotations, one Annotation JSON a line, oldest first."""
        return self._m(model, "label:annotations")

    def label_annotators(self, model: str) -> str:
        """Hash: "task id NUL annotator" -> "label" or "skip", who answered a task."""
        return self._m(model, "label:annotators")

    def label_progress(self, model: str) -> str:
        """Hash: task id -> its non-skip annotations other than adjudicators'."""
        return self._m(model, "label:progress")

    def label_holders(self, model: str) -> str:
        """Hash: task id -> {annotator: lease end} of its claims (JSON)."""
        return self._m(model, "label:holders")

    def label_outcomes(self, model: str) -> str:
        """Hash: task id -> {"final_label", "agreement", "settled_at"} (JSON)."""
        return self._m(model, "label:outcomes")

    def label_touched(self, model: str) -> str:
        """Sorted set: annotated task id scored by its newest annotation's time."""
        return self._m(model, "label:touched")

    def label_stats(self, model: str) -> str:
        """Hash of counters: "evicted" (ever), "tasks" and "gold" (queued, for the gold
        share), "reason:<reason>" (unfinished tasks flagged for it)."""
        return self._m(model, "label:stats")

    def labels_origin(self, model: str) -> str:
        """Hash: event id -> "random" or "queue", for labels the labeling queue gave (its
        random share, or its other picks); trimmed with the labels by their index."""
        return self._m(model, "labels:origin")
