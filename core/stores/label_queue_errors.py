"""Why the label queue refuses a call: an error per refusal, and the refusals its scripts
reply with (a status word instead of 'ok') mapped to them."""

from __future__ import annotations


class LabelQueueError(Exception):
    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class UnknownTaskError(LabelQueueError, LookupError):
    """No such task (never queued, evicted, or its model forgotten)."""


class AlreadyAnnotatedError(LabelQueueError):
    """The annotator answered (or skipped) this task already."""


class TaskDoneError(LabelQueueError):
    """The task is settled: it takes no more annotations."""


class AdjudicationPendingError(LabelQueueError):
    """The task awaits an adjudicator: only an adjudicator's annotation is taken."""


class StaleTaskError(LabelQueueError):
    """Annotations came in after the caller decided: decide again on the task as it is."""


# a script's refusal status: the error it raises, and its message
REFUSALS: dict[str, tuple[type[LabelQueueError], str]] = {
    "unknown": (UnknownTaskError, "no task {id!r}"),
    "done": (TaskDoneError, "task {id!r} is done"),
    "annotated": (AlreadyAnnotatedError, "the annotator answered task {id!r} already"),
    "adjudication": (AdjudicationPendingError, "task {id!r} awaits an adjudicator"),
    "stale": (StaleTaskError, "task {id!r} has other annotations by now"),
}


def refusal(status: str, task_id: str) -> LabelQueueError:
    """The error of a script's refusal `status` for the task."""
    error, message = REFUSALS[status]
    return error(task_id, message.format(id=task_id))
