"""Exposition text of per-model gauge families, rendered once per model snapshot.

Why: a 100-model scrape spent most of its time building ~11k drift samples (one
`add_metric` each) and formatting them in `generate_latest`, while a model's samples
change only with its snapshot (a stored run never changes). Each model's sample lines
are rendered once, by prometheus_client's own `generate_latest` so that the text is the
same byte for byte, and each scrape joins them under each family's HELP and TYPE lines:
every family's header once, all of its samples together, as the text format requires."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

Snapshot = TypeVar("Snapshot")
# The families of these models, the same ones in the same order whatever the models
# (an empty family is exported with its header only).
FamiliesOf = Callable[[Mapping[str, Snapshot]], Iterable[Metric]]
# Whether a model's text rendered from the first snapshot serves for the second.
Unchanged = Callable[[Snapshot, Snapshot], bool]


class _Families(Collector):
    """Families already built, as the Collector that `generate_latest` renders."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _text(family: Metric) -> str:
    return generate_latest(_Families([family])).decode()


def _sample_lines(family: Metric) -> str:
    """The family's text without its HELP and TYPE lines (a gauge's samples follow them;
    HELP text has its newlines escaped)."""
    _help, _type, samples = _text(family).split("\n", 2)
    return samples


@dataclass(frozen=True)
class _ModelText(Generic[Snapshot]):
    snapshot: Snapshot
    samples: dict[str, str]  # family name: this model's sample lines


class PerModelExposition(Generic[Snapshot]):
    """Text of the families `families_of` builds, cached per model while `unchanged`
    says its snapshot is the one the text was rendered from."""

    def __init__(self, families_of: FamiliesOf[Snapshot], unchanged: Unchanged[Snapshot]) -> None:
        self._families_of = families_of
        self._unchanged = unchanged
        self._headers = {family.name: _text(family) for family in families_of({})}
        self._texts: dict[str, _ModelText[Snapshot]] = {}

    def render(self, snapshots: Mapping[str, Snapshot]) -> str:
        """Every family, with the samples of these models in their order; models left out
        since the last render are forgotten."""
        texts = {model: self._text_of(model, snapshot) for model, snapshot in snapshots.items()}
        self._texts = texts
        return "".join(
            header + "".join(text.samples[name] for text in texts.values())
            for name, header in self._headers.items()
        )

    def _text_of(self, model: str, snapshot: Snapshot) -> _ModelText[Snapshot]:
        cached = self._texts.get(model)
        if cached is not None and self._unchanged(cached.snapshot, snapshot):
            return cached
        samples = {
            family.name: _sample_lines(family) for family in self._families_of({model: snapshot})
        }
        if samples.keys() != self._headers.keys():
            raise ValueError(
                f"families_of must build the same families whatever the models: "
                f"{sorted(samples.keys() ^ self._headers.keys())} differ for model {model!r}"
            )
        return _ModelText(snapshot, samples)
