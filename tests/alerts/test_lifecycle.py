"""One alert's lifecycle over a series of runs: hysteresis, unknown runs, reminders on a
moving clock, silences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from alerts.lifecycle import LifecyclePolicy, Step, advance, iso_utc, parse_iso
from core.alert_config import ColumnDriftRule
from core.alerts import AlertState, Observation, Verdict
from core.results import RunResult, WindowInfo

NOW = 1_800_000_000.0
HOUR = 3600.0
RULE = ColumnDriftRule(name="age-drift", kind="column_drift", column="age", severity="critical")


def observe(verdict: Verdict, value: float = 0.3) -> Observation:
    return Observation(
        rule=RULE.name,
        column="age",
        verdict=verdict,
        value=value,
        threshold=0.1,
        summary=f"column age: psi {value}",
    )


def run_at(now: float, index: int) -> RunResult:
    return RunResult(
        run_id=f"r{index}",
        model="m",
        status="ok",
        started_at=iso_utc(now),
        window=WindowInfo(start=iso_utc(now - HOUR), end=iso_utc(now), events=100 + index),
    )


@dataclass(frozen=True)
class Replay:
    steps: list[Step]

    @property
    def states(self) -> list[str]:
        return [step.state.state for step in self.steps]

    @property
    def notices(self) -> list[str | None]:
        return [step.notify for step in self.steps]

    @property
    def last(self) -> AlertState:
        return self.steps[-1].state


def replay(
    verdicts: str,
    policy: LifecyclePolicy,
    rule: ColumnDriftRule = RULE,
    previous: AlertState | None = None,
    every: float = HOUR,
    silenced: Sequence[bool] | None = None,
) -> Replay:
    """One run per letter (b: bad, g: good, u: unknown), `every` seconds apart, from NOW."""
    kinds: dict[str, Verdict] = {"b": "bad", "g": "good", "u": "unknown"}
    steps: list[Step] = []
    state = previous
    for index, letter in enumerate(verdicts):
        now = NOW + index * every
        quiet = silenced[index] if silenced is not None else False
        step = advance(state, observe(kinds[letter]), rule, run_at(now, index), now, policy, quiet)
        steps.append(step)
        state = step.state
    return Replay(steps)


K2_M3 = LifecyclePolicy(fire_after=2, resolve_after=3)


def test_one_bad_run_fires_when_k_is_1() -> None:
    (step,) = replay("b", LifecyclePolicy(fire_after=1)).steps
    assert step.notify == "firing"
    assert step.state.state == "firing"
    assert step.state.bad_runs == 1
    assert step.state.fired_at == step.state.last_notified_at == step.state.since == iso_utc(NOW)


def test_a_new_alert_is_keyed_by_model_rule_and_column() -> None:
    state = replay("g", K2_M3).last
    assert (state.model, state.rule, state.column, state.severity) == (
        "m",
        "age-drift",
        "age",
        "critical",
    )
    assert state.id == "m/age-drift/age"
    assert state.state == "inactive"


@pytest.mark.parametrize(
    ("verdicts", "states", "notices"),
    [
        # k=2: a good run between two bad ones resets the count
        ("bgbb", ["pending", "inactive", "pending", "firing"], [None, None, None, "firing"]),
        # m=3: two good runs and a bad one do not resolve
        (
            "bbggb",
            ["pending", "firing", "firing", "firing", "firing"],
            [None, "firing", None, None, None],
        ),
        # three consecutive good runs do
        (
            "bbgggg",
            ["pending", "firing", "firing", "firing", "resolved", "resolved"],
            [None, "firing", None, None, "resolved", None],
        ),
        # resolved, then bad again: pending, then firing anew
        (
            "bbgggbb",
            ["pending", "firing", "firing", "firing", "resolved", "pending", "firing"],
            [None, "firing", None, None, "resolved", None, "firing"],
        ),
    ],
)
def test_hysteresis(verdicts: str, states: list[str], notices: list[str | None]) -> None:
    result = replay(verdicts, K2_M3)
    assert result.states == states
    assert result.notices == notices


def test_the_whole_k2_m3_story() -> None:
    result = replay("bgbb" + "ggb" + "ggg", K2_M3)
    assert result.states[3] == "firing"
    assert result.states[4:7] == ["firing"] * 3
    assert result.states[-1] == "resolved"
    assert [n for n in result.notices if n] == ["firing", "resolved"]
    assert result.notices[-1] == "resolved"


def test_pending_back_to_inactive_is_silent_and_moves_since() -> None:
    result = replay("bg", K2_M3)
    assert result.notices == [None, None]
    assert result.states == ["pending", "inactive"]
    assert result.steps[0].state.since == iso_utc(NOW)
    assert result.steps[1].state.since == iso_utc(NOW + HOUR)
    assert (result.last.bad_runs, result.last.good_runs) == (0, 1)


def test_since_moves_only_when_the_state_does() -> None:
    pending = replay("bb", LifecyclePolicy(fire_after=3)).last
    assert (pending.state, pending.since, pending.bad_runs) == ("pending", iso_utc(NOW), 2)
    result = replay("bbbb", K2_M3)
    assert [step.state.since for step in result.steps] == [iso_utc(NOW)] + [iso_utc(NOW + HOUR)] * 3
    assert result.last.fired_at == iso_utc(NOW + HOUR)
    assert result.last.bad_runs == 4


@pytest.mark.parametrize(
    ("verdicts", "states", "notices"),
    [
        # an unknown run neither breaks the bad streak ...
        ("bub", ["pending", "pending", "firing"], [None, None, "firing"]),
        # ... nor fires on its own ...
        ("uuu", ["inactive"] * 3, [None] * 3),
        # ... nor breaks the good streak ...
        (
            "bbgugg",
            ["pending", "firing", "firing", "firing", "firing", "resolved"],
            [None, "firing", None, None, None, "resolved"],
        ),
        # ... nor resolves on its own
        ("bbuuuu", ["pending"] + ["firing"] * 5, [None, "firing", None, None, None, None]),
    ],
)
def test_unknown_runs_change_nothing(
    verdicts: str, states: list[str], notices: list[str | None]
) -> None:
    result = replay(verdicts, K2_M3)
    assert result.states == states
    assert result.notices == notices


def test_an_unknown_run_only_records_that_it_ran() -> None:
    before = replay("b", K2_M3).last
    step = advance(
        before, observe("unknown", value=0.9), RULE, run_at(NOW + HOUR, 7), NOW + HOUR, K2_M3, False
    )
    assert (step.state.last_run_id, step.state.last_run_at) == ("r7", iso_utc(NOW + HOUR))
    assert step.state.model_dump(exclude={"last_run_id", "last_run_at"}) == before.model_dump(
        exclude={"last_run_id", "last_run_at"}
    )


def test_every_judged_run_refreshes_what_the_alert_shows() -> None:
    before = replay("b", K2_M3).last
    quieter = RULE.model_copy(update={"severity": "info"})
    step = advance(
        before,
        observe("good", value=0.05),
        quieter,
        run_at(NOW + HOUR, 1),
        NOW + HOUR,
        K2_M3,
        False,
    )
    assert (step.state.value, step.state.threshold) == (0.05, 0.1)
    assert step.state.summary == "column age: psi 0.05"
    assert step.state.severity == "info"
    assert step.state.window.events == 101
    assert step.state.window.end == iso_utc(NOW + HOUR)


def test_reminders_go_out_every_repeat_seconds_while_firing() -> None:
    policy = LifecyclePolicy(fire_after=1, repeat_seconds=4 * HOUR)
    result = replay("b" * 10, policy)  # one run an hour
    assert result.notices == [
        "firing",
        None,
        None,
        None,
        "reminder",
        None,
        None,
        None,
        "reminder",
        None,
    ]
    assert result.steps[4].state.last_notified_at == iso_utc(NOW + 4 * HOUR)
    assert result.last.last_notified_at == iso_utc(NOW + 8 * HOUR)
    assert result.last.fired_at == iso_utc(NOW)


def test_no_reminder_while_the_alert_is_resolving() -> None:
    policy = LifecyclePolicy(fire_after=1, resolve_after=5, repeat_seconds=HOUR)
    result = replay("bgggg", policy)
    assert result.notices == ["firing", None, None, None, None]


def test_the_rules_own_k_and_m_win_over_the_policy() -> None:
    strict = RULE.model_copy(update={"fire_after": 3, "resolve_after": 1})
    result = replay("bbbg", LifecyclePolicy(fire_after=1, resolve_after=4), rule=strict)
    assert result.states == ["pending", "pending", "firing", "resolved"]


def test_a_silence_changes_no_state_only_the_notices() -> None:
    policy = LifecyclePolicy(fire_after=2, resolve_after=2, repeat_seconds=2 * HOUR)
    verdicts = "bbbbbgg"
    loud = replay(verdicts, policy)
    quiet = replay(verdicts, policy, silenced=[True] * len(verdicts))
    assert (
        quiet.states
        == loud.states
        == ["pending", "firing", "firing", "firing", "firing", "firing", "resolved"]
    )
    assert loud.notices == [None, "firing", None, "reminder", None, None, "resolved"]
    assert quiet.notices == [None] * len(verdicts)
    assert all(step.state.last_notified_at is None for step in quiet.steps)
    assert quiet.last.fired_at == loud.last.fired_at


def test_a_firing_hidden_by_a_silence_is_announced_when_it_ends() -> None:
    policy = LifecyclePolicy(fire_after=1, repeat_seconds=4 * HOUR)
    result = replay("bbb", policy, silenced=[True, True, False])
    assert result.notices == [None, None, "firing"]
    assert result.last.last_notified_at == iso_utc(NOW + 2 * HOUR)
    assert result.last.fired_at == iso_utc(NOW)


def test_a_refiring_hidden_by_a_silence_is_announced_as_firing() -> None:
    """The last notice belongs to the previous episode: no reminder of that one."""
    policy = LifecyclePolicy(fire_after=1, resolve_after=1, repeat_seconds=HOUR)
    result = replay("bgbb", policy, silenced=[False, False, True, False])
    assert result.states == ["firing", "resolved", "firing", "firing"]
    assert result.notices == ["firing", "resolved", None, "firing"]
    assert result.last.fired_at == iso_utc(NOW + 2 * HOUR)


def test_a_reminder_held_back_by_a_silence_goes_out_when_it_ends() -> None:
    policy = LifecyclePolicy(fire_after=1, repeat_seconds=2 * HOUR)
    result = replay("bbbbb", policy, silenced=[False, False, True, True, False])
    assert result.notices == ["firing", None, None, None, "reminder"]
    assert result.last.last_notified_at == iso_utc(NOW + 4 * HOUR)


def test_iso_times_are_utc_with_a_z_and_read_back() -> None:
    assert iso_utc(NOW) == "2027-01-15T08:00:00Z"
    assert parse_iso("2027-01-15T08:00:00Z") == NOW
    assert parse_iso("2027-01-15T09:00:00+01:00") == NOW
    assert parse_iso(iso_utc(NOW + 0.25)) == NOW + 0.25


def test_a_runs_start_with_an_offset_is_written_with_a_z() -> None:
    offset = run_at(NOW, 0).model_copy(update={"started_at": "2027-01-15T08:00:00+00:00"})
    step = advance(None, observe("good"), RULE, offset, NOW, K2_M3, False)
    assert step.state.last_run_at == "2027-01-15T08:00:00Z"


@pytest.mark.parametrize(
    "fields",
    [{"fire_after": 0}, {"resolve_after": 0}, {"repeat_seconds": 0.0}],
)
def test_a_policy_refuses_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LifecyclePolicy(**fields)  # type: ignore[arg-type]


def test_a_resolved_alert_is_forgotten_after_staying_good_for_a_day() -> None:
    """It stays listed (resolved) for resolved_keep_seconds, then becomes a blank
    inactive state, which the store drops; a bad run in between starts a new episode."""
    policy = LifecyclePolicy(fire_after=1, resolve_after=1, resolved_keep_seconds=3 * HOUR)
    result = replay("bgggg", policy)
    assert result.states == ["firing", "resolved", "resolved", "resolved", "inactive"]
    assert result.notices == ["firing", "resolved", None, None, None]
    assert (result.last.bad_runs, result.last.good_runs) == (0, 0)
    again = replay("bggbg", policy)
    assert again.states == ["firing", "resolved", "resolved", "firing", "resolved"]
