"""The demo's labeling round: the queue the drifted run filled, the top tasks and why,
two simulated annotators labeling the same tasks (one careful, one sloppy), an
adjudicator settling their ties, and their agreement."""

from __future__ import annotations

import random
from typing import Any

import httpx

from service.demo_client import expect, model_path
from service.demo_scenario import LABELED_TASKS, SLOPPY_SHARE

SHOWN = 3


def labeling_path(suffix: str) -> str:
    return model_path(suffix).replace("/v1/models/", "/v1/labeling/")


def show_queue(client: httpx.Client) -> int:
    """Prints the queue by reason; returns how many tasks are open."""
    stats = expect(client.get(labeling_path("/stats")), 200)
    by_reason = ", ".join(f"{reason} {count}" for reason, count in stats["by_reason"].items())
    print(f"   queue: {stats['open']} open tasks (by reason: {by_reason})")
    return int(stats["open"])


def claim(client: httpx.Client, annotator: str, limit: int, **extra: str) -> list[dict[str, Any]]:
    params = {"annotator": annotator, "limit": str(limit), **extra}
    tasks: list[dict[str, Any]] = expect(client.get(labeling_path("/tasks"), params=params), 200)[
        "tasks"
    ]
    return tasks


def show_top(tasks: list[dict[str, Any]]) -> None:
    print(f"   the {SHOWN} highest-priority tasks:")
    for task in tasks[:SHOWN]:
        details = "; ".join(task["details"][:2]) or "-"
        reasons = ", ".join(task["reasons"])
        print(f"     {task['event_id']}  priority {task['priority']:.2f}  {reasons}: {details}")


def annotate(
    client: httpx.Client, task_id: str, annotator: str, label: object, **extra: Any
) -> None:
    body = {"annotator": annotator, "label": label, **extra}
    expect(client.post(f"/v1/labeling/tasks/{task_id}/annotations", json=body), 201)


def labeling_round(client: httpx.Client, truth: dict[str, int]) -> None:
    """alice labels as the ground truth says; bob gets SLOPPY_SHARE of his wrong; carol
    adjudicates their ties with the truth."""
    rng = random.Random(7)
    alice = claim(client, "alice", LABELED_TASKS)
    show_top(alice)
    for task in alice:
        annotate(client, task["id"], "alice", truth[task["event_id"]])
    bob = claim(client, "bob", LABELED_TASKS)
    for task in bob:
        right = truth[task["event_id"]]
        annotate(client, task["id"], "bob", 1 - right if rng.random() < SLOPPY_SHARE else right)
    ties = claim(client, "carol", LABELED_TASKS, adjudicator="true")
    for task in ties:
        annotate(client, task["id"], "carol", truth[task["event_id"]], adjudicator=True)
    print(
        f"   alice and bob labeled {len(alice)} and {len(bob)} tasks; "
        f"carol settled {len(ties)} ties"
    )


def show_agreement(client: httpx.Client) -> float | None:
    """Prints the agreement figures; returns the kappa."""
    found = expect(client.get(labeling_path("/annotators")), 200)
    kappa = found["kappa"]
    print(
        f"   inter-annotator agreement: {found['kappa_method']} kappa {number(kappa)}, "
        f"disagreement rate {number(found['disagreement_rate'])}"
    )
    for person in found["annotators"]:
        print(
            f"     {person['annotator']:<6} {person['answers']:>3} answers, agreement with "
            f"the consensus {number(person['agreement'])}"
        )
    return None if kappa is None else float(kappa)


def number(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.2f}"


def performance_lines(performance: dict[str, Any]) -> str:
    """The run's performance section as the demo prints it."""
    if not performance:
        return "   performance: none (the model has no labels yet)"
    window = performance.get("window") or {}
    estimate = performance.get("random_estimate") or {}
    lines = [
        f"   performance: {performance['labeled_events']} labeled events "
        f"({performance.get('labels_from_queue', 0)} from the queue), status "
        f"{performance['status']}, accuracy {number(window.get('accuracy'))}, "
        f"f1 {number(window.get('f1'))}",
    ]
    if estimate:
        random_window = estimate.get("window")
        figure = (
            f"accuracy {number(random_window.get('accuracy'))}"
            if random_window
            else f"too few for an estimate (needs {estimate['min_labeled_events']})"
        )
        lines.append(
            f"     on the random share alone ({estimate['labeled_events']} labels, "
            f"unbiased): {figure}"
        )
    return "\n".join(lines)
