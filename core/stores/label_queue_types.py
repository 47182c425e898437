"""What the label queue takes and returns besides tasks: task ids, the retention of done
tasks, and the counts of an add and of the whole queue."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from core.stores.label_queue_errors import UnknownTaskError

# a task id: the model, "~" (no model name holds one), 32 hex digits of a hash of the
# model and the event id: URL-safe, the same for the same event, the model recoverable
TASK_ID = re.compile(r"^(?P<model>[^~{}]+)~[0-9a-f]{32}$")


@dataclass(frozen=True)
class AddResult:
    queued: int  # new tasks in the queue after the call
    duplicates: int  # samples whose event has a task already
    evicted: int  # tasks evicted by the call, old ones or new ones that did not fit


@dataclass(frozen=True)
class Retention:
    """How long and how many done tasks a model keeps."""

    seconds: float  # after settling (the label TTL)
    max_done: int  # the oldest beyond this many go first


@dataclass(frozen=True)
class QueueStats:
    open: int
    claimed: int  # open or adjudication tasks with a live claim
    adjudication: int
    done: int
    by_reason: dict[str, int]  # unfinished (open or adjudication) tasks per flag reason
    evicted_total: int
    pruned_total: int = 0  # done tasks dropped past their retention


def task_id_for(model: str, event_id: str) -> str:
    digest = hashlib.sha256(f"{model}\0{event_id}".encode()).hexdigest()[:32]
    return f"{model}~{digest}"


def model_of(task_id: str) -> str:
    """The model of a task id; UnknownTaskError when it is no task id."""
    match = TASK_ID.match(task_id)
    if match is None:
        raise UnknownTaskError(task_id, f"{task_id!r} is no task id")
    return match["model"]
