"""Where detections run: a pool of worker processes that stay out of intake's way."""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from threadpoolctl import threadpool_limits

DETECTION_NICENESS = 10
NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# what a detection loads; a warm worker has them all (tests look for them)
DETECTION_MODULES = ("evidently", "sklearn", "scipy", "detectors.evaluate")
WARMUP_ROWS = 300  # past DriftPolicy.min_column_events, so the tests themselves run


@contextmanager
def detection_executor(workers: int, threads: int = 1, pin: bool = True) -> Iterator[Executor]:
    """Detections are CPU-bound: a process pool keeps them off the event loop's GIL.
    workers=0 runs them in one thread (tests, tiny deployments)."""
    executor: Executor
    if workers == 0:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")
    else:
        cpus = detection_cpus(workers, available_cpus()) if pin else None
        executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=prepare_detection_worker,
            initargs=(threads, cpus),
        )
    try:
        yield executor
    finally:
        # waiting lets worker processes exit cleanly (no leaked semaphores); queued
        # detections are cancelled, a running one finishes first
        executor.shutdown(wait=True, cancel_futures=True)


def available_cpus() -> frozenset[int] | None:
    getter = getattr(os, "sched_getaffinity", None)  # Linux only
    return frozenset(getter(0)) if getter else None


def detection_cpus(workers: int, available: frozenset[int] | None) -> frozenset[int] | None:
    """The last `workers` CPUs, when that leaves at least one to intake; else no pinning."""
    if available is None or len(available) <= workers:
        return None
    return frozenset(sorted(available)[-workers:])


def prepare_detection_worker(threads: int, cpus: frozenset[int] | None) -> None:
    """Measured on 2 cores with intake's p99 as the yardstick: a busy niced process
    that the kernel moves between cores cost 1.3-1.9x idle p99; the same process held
    on one core cost 0.9-1.05x, because the request path then always finds a free core.
    OpenMP (the domain classifier) and BLAS otherwise start a thread per core, which
    undoes that. SCHED_IDLE was measured too and did worse than nice."""
    os.nice(DETECTION_NICENESS)
    if cpus:
        os.sched_setaffinity(0, cpus)
    for variable in NATIVE_THREAD_VARIABLES:  # libraries loaded later read these
        os.environ[variable] = str(threads)
    importlib.import_module("detectors.evaluate")  # loads sklearn's OpenMP and BLAS now
    threadpool_limits(limits=threads)


@dataclass(frozen=True)
class WarmWorker:
    """What a warm-up task saw in the worker that ran it."""

    pid: int
    modules_loaded: bool


def warm_detection_worker() -> WarmWorker:
    """Runs in a worker: loads the detection modules and runs a tiny drift test on one
    number and one category, so that the lazy imports and first-call set-ups inside
    Evidently, scipy and pandas are paid here instead of by the first real run."""
    for module in DETECTION_MODULES:
        importlib.import_module(module)
    import numpy as np
    import pandas as pd

    from detectors.drift import ColumnSpec, detect_drift

    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame(
            {
                "number": rng.normal(size=WARMUP_ROWS),
                "category": rng.choice(["a", "b"], WARMUP_ROWS),
            }
        )
        for _ in range(2)
    ]
    specs = [ColumnSpec("number", "numerical"), ColumnSpec("category", "categorical")]
    detect_drift(frames[0], frames[1], specs)
    return WarmWorker(os.getpid(), all(module in sys.modules for module in DETECTION_MODULES))


async def warm_up(executor: Executor, workers: int) -> list[WarmWorker]:
    """Every worker of the pool spawned and warm. A process pool spawns a worker per task
    submitted while none is idle, but an early worker may take a second task before a
    later one is up: tasks are sent again until `workers` distinct processes answered."""
    loop = asyncio.get_running_loop()
    wanted = max(1, workers)
    warm: dict[int, WarmWorker] = {}
    while len(warm) < wanted:
        tasks = [loop.run_in_executor(executor, warm_detection_worker) for _ in range(wanted)]
        for worker in await asyncio.gather(*tasks):
            warm[worker.pid] = worker
    return list(warm.values())
