"""The worker processes that parse feeds and match their items, replaced whole when one hangs.

A task that overruns its deadline (a feed that sends feedparser into a loop it never leaves)
would hold its worker for good, and the next polls of that feed would take the others one by
one. A process pool cannot cancel a running task, so the pool is replaced: new workers take
the next tasks at once, the old ones are killed, and the tasks still on them fail as
``WorkerLost`` (their feeds are polled again at their next interval).

Workers die with the daemon, however it dies: PR_SET_PDEATHSIG covers a worker whose parent is
the daemon (spawn, fork), and a thread in each worker waits on a pidfd of the daemon itself,
which also covers the forkserver start method (there the parent is the fork server, which a
SIGKILLed daemon leaves running because its own workers hold it open). At stop, workers still
busy after the stop timeout are killed (``stop``).
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from monitor import metrics
from monitor.errors import MonitorError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL = 1.0  # seconds between checks of the daemon where there is no pidfd
T = TypeVar("T")


class WorkerLost(MonitorError):
    """A worker task that did not finish: it overran its deadline, or its worker was replaced."""


def worker_init(daemon: int | None = None) -> None:
    """In each worker: die with the daemon (process id ``daemon``; by default the parent). A
    SIGKILLed daemon must not leave workers behind: they would hold its stdout, and its journal
    stream, open, and spin on for good on whatever they were parsing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's to handle
    daemon = os.getppid() if daemon is None else daemon
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if not _alive(daemon):  # the daemon died before the watch could start
        os._exit(0)
    threading.Thread(target=_exit_with, args=(daemon,), name="watch-daemon", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return os.getppid() != 1 or pid == 1  # re-parented to init: our daemon is gone


def _exit_with(daemon: int) -> None:
    """Block until process ``daemon`` ends, then end this worker at once, mid-task or not."""
    try:
        handle = os.pidfd_open(daemon)
    except ProcessLookupError:
        os._exit(0)
    except (OSError, AttributeError):  # no pidfd (kernel < 5.3, not Linux): look every second
        while _alive(daemon):
            time.sleep(PARENT_POLL)
        os._exit(0)
    select.select([handle], [], [])
    os._exit(0)


class WorkerPool:
    """``size`` worker processes (spawned, so they share no state with the daemon's threads)."""

    START_METHOD = "spawn"

    def __init__(self, size: int) -> None:
        self.size = size
        self.restarts = 0
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context(self.START_METHOD),
                                   initializer=worker_init, initargs=(os.getpid(),))

    async def run(self, deadline: float, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker; WorkerLost if it takes longer than ``deadline`` seconds
        (the pool is then replaced) or its worker was killed under it."""
        executor = self.executor
        future = asyncio.get_running_loop().run_in_executor(executor, function, *args)
        try:
            return await asyncio.wait_for(future, deadline)
        except TimeoutError:
            self.replace(executor)
            raise WorkerLost(f"took longer than {deadline:g} s; its worker was stopped",
                             "the feed is tried again at its next poll") from None
        except BrokenProcessPool:
            raise WorkerLost("its worker was stopped (another task overran its deadline, or it crashed)",
                             "the feed is tried again at its next poll") from None

    def replace(self, stuck: ProcessPoolExecutor) -> None:
        """New workers for ``stuck`` (unless already replaced), and the old ones killed."""
        if stuck is not self.executor:
            return
        self.executor = self._start()
        self.restarts += 1
        metrics.WORKER_RESTARTS.inc()
        # Private, but the only handle on the processes: a pool cannot cancel a running task.
        processes = list(getattr(stuck, "_processes", {}).values())
        for process in processes:
            process.kill()
        stuck.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """The current workers' process ids (started on first use)."""
        return sorted(getattr(self.executor, "_processes", {}))

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def stop(self, grace: float) -> int:
        """Stop the workers without waiting on a stuck one: queued tasks are dropped, idle workers
        leave at once, and those still busy after ``grace`` seconds are killed; how many were."""
        executor = self.executor
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        # A worker's sentinel becomes readable when it ends; waiting on it reaps nothing, so the
        # pool's own thread still collects its workers.
        busy = {process.sentinel: process for process in processes}
        deadline = time.monotonic() + grace
        while busy:
            ended = multiprocessing.connection.wait(list(busy), max(0.0, deadline - time.monotonic()))
            if not ended:
                break
            for sentinel in ended:
                busy.pop(sentinel)
        for process in busy.values():
            process.kill()
        return len(busy)
