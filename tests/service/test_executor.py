"""Detection workers stay out of intake's way: niced, few native threads, one core."""

from __future__ import annotations

import os

import pytest

from service.executor import DETECTION_NICENESS, detection_cpus, detection_executor


def worker_conditions() -> tuple[int, list[int], set[int]]:
    """Runs inside a detection worker: niceness, each native pool's threads, its CPUs."""
    from threadpoolctl import threadpool_info

    return os.nice(0), [pool["num_threads"] for pool in threadpool_info()], os.sched_getaffinity(0)


def test_workers_are_niced_and_single_threaded() -> None:
    with detection_executor(1, threads=1, pin=False) as executor:
        niceness, pools, cpus = executor.submit(worker_conditions).result(timeout=120)
    assert niceness >= os.nice(0) + DETECTION_NICENESS
    assert pools, "no OpenMP/BLAS pool seen in the worker"
    assert set(pools) == {1}, pools
    assert cpus == os.sched_getaffinity(0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin one")
def test_a_worker_is_held_on_the_last_cpu() -> None:
    mine = os.sched_getaffinity(0)
    with detection_executor(1) as executor:
        _, _, cpus = executor.submit(worker_conditions).result(timeout=120)
    assert cpus == {max(mine)}
    assert os.sched_getaffinity(0) == mine, "the server itself must stay unpinned"


def test_pinning_leaves_intake_a_cpu() -> None:
    assert detection_cpus(1, frozenset({0, 1})) == frozenset({1})
    assert detection_cpus(2, frozenset({0, 2, 5, 7})) == frozenset({5, 7})
    assert detection_cpus(2, frozenset({0, 1})) is None
    assert detection_cpus(1, None) is None
