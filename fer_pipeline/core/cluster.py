"""Fixed chunks on a dask.distributed cluster, results back in submission order, a bounded number in flight.

Used by `landmarks` and `aumaps` when their `backend_joblib` is `dask`: the cluster at DASK_SCHEDULER_ADDRESS (dask's
`scheduler-address` setting), else a LocalCluster of `n_jobs` worker processes owned by the stage. The engine is used
directly (`Client.submit` + `as_completed`), not through joblib: the chunks, and so the bytes, are the same as loky's.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from asyncio import CancelledError as AsyncCancelled
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

#: Parallel engines of the chunked stages: loky (local processes, the default) or dask (a cluster).
ENGINES = ("loky", "dask")
#: Chunks submitted ahead of the one written next, per worker (memory: at most this many results held a worker).
IN_FLIGHT_PER_WORKER = 2


class ClusterError(RuntimeError):
    """The dask cluster could not be used or lost the work; nothing was written (the stage prints one line)."""


def _distributed() -> Any:
    """The `distributed` module, or a one-line error saying which extra installs it."""
    try:
        import distributed
    except ImportError:
        raise ClusterError("backend_joblib=dask needs dask.distributed: `pip install -e '.[dask]'`") from None
    return distributed


def scheduler_address() -> str | None:
    """The scheduler named by DASK_SCHEDULER_ADDRESS (or dask's `scheduler-address` setting), else None."""
    import dask

    return os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get("scheduler-address", None)


@contextlib.contextmanager
def dask_client(n_jobs: int) -> Iterator[Any]:
    """A Client: an existing default one, the scheduler at DASK_SCHEDULER_ADDRESS, or a LocalCluster of `n_jobs`
    single-threaded worker processes (closed on exit; one an external scheduler owns is left running)."""
    distributed = _distributed()
    try:  # already inside a Client (a test, a notebook): use it
        existing = distributed.get_client()
    except ValueError:
        existing = None
    if existing is not None:
        yield existing
        return
    address = scheduler_address()
    if address:
        import dask

        timeout = dask.config.get("distributed.comm.timeouts.connect")
        try:
            client = distributed.Client(address, timeout=timeout)
        except OSError as e:
            raise ClusterError(
                f"cannot reach the dask scheduler at {address} (DASK_SCHEDULER_ADDRESS) within {timeout}: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}; start it, or unset the variable for a local cluster"
            ) from None
        print(f"dask: scheduler {address}, {len(client.scheduler_info()['workers'])} workers", flush=True)
        with client:
            yield client
        return
    workers = int(n_jobs) if int(n_jobs) > 0 else max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))
    print(f"dask: no DASK_SCHEDULER_ADDRESS: a local cluster of {workers} worker processes", flush=True)
    with (
        distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _lost(e: BaseException) -> bool:
    """Is `e` the cluster failing (a worker killed too often, the scheduler gone), not the task's own error?"""
    distributed = _distributed()
    return isinstance(e, distributed.KilledWorker | distributed.comm.CommClosedError | CancelledError | AsyncCancelled)


def ordered_map(
    fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]], client: Any, *, what: str, in_flight: int = 0
) -> Iterator[Any]:
    """fn(*task) for each task, run on `client`'s workers, yielded in task order; at most `in_flight` tasks (default
    IN_FLIGHT_PER_WORKER a worker) submitted ahead of the one yielded next, so results held do not grow with the
    number of tasks. A lost worker's tasks are rerun elsewhere by dask; a cluster failure is a one-line ClusterError."""
    distributed = _distributed()
    limit = int(in_flight) or IN_FLIGHT_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))
    it = enumerate(tasks)
    pending: dict[Any, int] = {}
    done: dict[int, Any] = {}
    queue = distributed.as_completed()
    next_out = 0

    def submit_upto() -> None:
        while len(pending) + len(done) < limit:
            item = next(it, None)
            if item is None:
                return
            i, args = item
            future = client.submit(fn, *args, key=f"{what}-{i}-{uuid.uuid4().hex}", pure=False)
            pending[future] = i
            queue.add(future)

    try:
        submit_upto()
        for future in queue:
            i = pending.pop(future)
            try:
                done[i] = future.result()
            except BaseException as e:
                if not _lost(e):
                    raise
                first = str(e).split(". ")[0].splitlines()[0] if str(e) else ""
                raise ClusterError(
                    f"the dask cluster lost {what} chunk {i} ({type(e).__name__}: {first}); nothing was written. "
                    "Check the workers (memory, logs) and rerun the stage."
                ) from None
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            submit_upto()
    finally:
        for future in pending:
            future.cancel()
