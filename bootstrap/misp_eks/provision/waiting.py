"""Polling with a deadline: every wait names what it waited for, shows its elapsed time and can be cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

from misp_eks.provision.errors import Cancelled, WaitTimeout
from misp_eks.provision.progress import Progress

T = TypeVar("T")


@dataclass(frozen=True)
class Poll(Generic[T]):
    """One look at something being waited for: done or not, a word on its state, and its value."""

    done: bool
    status: str = ""
    value: T | None = None


@dataclass(frozen=True)
class Timing:
    """Timeouts and poll intervals in seconds (tests shrink them)."""

    database: float = 90 * 60
    cache: float = 60 * 60
    file_system: float = 15 * 60
    certificate: float = 30 * 60
    stack: float = 60 * 60
    eksctl: float = 90 * 60
    flux: float = 13 * 60
    """Below the 15 minutes EKS accepts the token in the kubeconfig flux gets (eks_token.LIFETIME_SECONDS)."""
    kustomizations: float | None = None
    """None: as long as the repository's Flux Kustomizations may take (verify.flux_chain_seconds)."""
    endpoints: float = 10 * 60
    teardown: float = 20 * 60
    secret_sync: float = 5 * 60
    """External Secrets refreshing an ExternalSecret it was told to (force-sync)."""
    tool: float = 5 * 60
    http: float = 10.0
    poll_slow: float = 30.0
    poll: float = 10.0

    @classmethod
    def fast(cls) -> Timing:
        """For tests against an emulator: short deadlines, quick polls."""
        return cls(
            database=5,
            cache=5,
            file_system=5,
            certificate=5,
            stack=5,
            eksctl=60,
            flux=30,
            kustomizations=5,
            endpoints=5,
            teardown=5,
            secret_sync=5,
            tool=30,
            http=5,
            poll_slow=0.05,
            poll=0.05,
        )


def wait_until(
    what: str,
    probe: Callable[[], Poll[T]],
    *,
    timeout: float,
    interval: float,
    progress: Progress,
    cancel: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> T | None:
    """Call ``probe`` until it reports done; raise :class:`WaitTimeout` naming ``what`` after ``timeout``."""
    start = clock()
    poll = probe()
    if poll.done:  # nothing to wait for: no wait is shown
        return poll.value
    with progress.waiting(what, poll.status) as ticker:
        while True:
            elapsed = clock() - start
            if elapsed >= timeout:
                raise WaitTimeout(what, elapsed, poll.status)
            if cancel.wait(min(interval, max(timeout - elapsed, 0.0))):
                raise Cancelled
            poll = probe()
            ticker.update(poll.status)
            if poll.done:
                return poll.value


def run_concurrently(tasks: dict[str, Callable[[], T]], cancel: threading.Event) -> dict[str, T]:
    """Run ``tasks`` in threads and wait for all; the first failure cancels the others and is raised."""
    results: dict[str, T] = {}
    executor = ThreadPoolExecutor(max_workers=max(len(tasks), 1), thread_name_prefix="bootstrap")
    futures: dict[Future[T], str] = {executor.submit(task): name for name, task in tasks.items()}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    cancel.set()
                    wait(pending)
                    raise error
                results[futures[future]] = future.result()
    except BaseException:
        cancel.set()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return results
