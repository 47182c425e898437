"""How a reason's candidates are capped: its sources (drifted columns, findings) take
turns, each source's most severe first, ties in a seeded random order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.flag_candidates import Candidates, Floats, Ints


@dataclass
class Selected:
    """A selected position under one reason: its best severity and every detail."""

    severity: float
    details: list[str] = field(default_factory=list)


def select_in_turns(parts: list[Candidates], tiebreak: Floats, cap: int) -> dict[int, Selected]:
    """At most `cap` positions, taken from the parts (columns, checks) in turn, each
    part's most severe first: every drifted column gets its share before any gets a
    second. Each comes with its best severity and the details of every part naming it."""
    parts = [
        Candidates(
            part.positions[part.severity > 0], part.severity[part.severity > 0], part.describe
        )
        for part in parts
    ]
    parts = [part for part in parts if len(part.positions)]
    if not parts or cap <= 0:
        return {}
    # a part's positions are distinct: `cap` turns of any one part fill the cap, so no
    # part is read past its `cap` first
    heads = [_head(part, tiebreak, cap) for part in parts]
    positions = np.concatenate([head for head, _ in heads])
    severity = np.concatenate([severity for _, severity in heads])
    turn = np.concatenate([np.arange(len(head)) for head, _ in heads])
    # by turn, then the most severe, then the seeded order; a position once
    ordered = positions[np.lexsort((tiebreak[positions], -severity, turn))]
    _, first = np.unique(ordered, return_index=True)
    top = ordered[np.sort(first)[:cap]]
    return _with_details(parts, top, len(tiebreak))


def _with_details(parts: list[Candidates], top: Ints, size: int) -> dict[int, Selected]:
    """The chosen positions with the best severity and the details of every part naming
    them, in the parts' order."""
    chosen = np.zeros(size, dtype=bool)
    chosen[top] = True
    selected = {int(position): Selected(0.0) for position in top}
    for part in parts:
        hit = chosen[part.positions]
        named = zip(part.positions[hit].tolist(), part.severity[hit].tolist(), strict=True)
        for position, value in named:
            entry = selected[position]
            entry.severity = max(entry.severity, value)
            detail = part.describe(position)
            if detail not in entry.details:
                entry.details.append(detail)
    return selected


def _head(part: Candidates, tiebreak: Floats, cap: int) -> tuple[Ints, Floats]:
    """The part's `cap` first candidates, in order: the most severe, ties in the seeded
    order. Linear in the part's size (a partition, then a sort of `cap` at most)."""
    keep: Ints = np.arange(len(part.positions))
    if len(keep) > cap:
        kth = np.partition(part.severity, len(keep) - cap)[len(keep) - cap]
        above = np.flatnonzero(part.severity > kth)
        ties = np.flatnonzero(part.severity == kth)
        need = cap - len(above)  # at least 1: kth is the cap-th largest
        if len(ties) > need:
            ties = ties[np.argpartition(tiebreak[part.positions[ties]], need - 1)[:need]]
        keep = np.concatenate([above, ties])
    positions, severity = part.positions[keep], part.severity[keep]
    order = np.lexsort((tiebreak[positions], -severity))
    return positions[order], severity[order]
