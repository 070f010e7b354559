"""dask.distributed for `landmarks` (dlib68) and `aumaps`: the same bytes as loky on a LocalCluster and on an external
scheduler + 2 workers (DASK_SCHEDULER_ADDRESS), one model load per worker, and a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import distributed  # the `dask` extra (`make test` installs it)
import numpy as np
import pytest

from fer_pipeline.aumaps.build import aumap_attrs, build_aumap_store_from_files
from fer_pipeline.core.cluster import ClusterError, dask_client, ordered_map
from fer_pipeline.landmarks import dlib68
from fer_pipeline.landmarks.parallel import worker_model
from fer_pipeline.landmarks.stage import build_landmark_store
from tests.conftest import ROOT
from tests.faces import write_faces

N, SIZE, CHUNK = 24, 64, 4  # 6 landmark chunks of 4 faces, 3 AU-map chunks of 8
LANDMARKS = {"backend": "dlib68", "detector": "hog", "fallback": ["haar"], "n_jobs": 2, "chunk_size": CHUNK}
ATTRS = aumap_attrs("reference", 56, 0.25, 0.5)
DASK = Path(sys.executable).parent / "dask"  # the `dask` command installed with distributed

#: The two stages' work in a fresh process (as `pipeline/*.py` runs it), with one-line errors (`run_stage`).
STAGES = """
import json, sys
from pathlib import Path
from fer_pipeline.aumaps.build import build_aumap_store_from_files
from fer_pipeline.landmarks.stage import build_landmark_store
from fer_pipeline.validate import run_stage
spec = json.loads(sys.argv[1])
root, out = Path(spec["root"]), Path(spec["out"])
if __name__ == "__main__":
    run_stage("landmarks", lambda: build_landmark_store(out / "lm.h5", root / "manifest.csv", root, spec["lm"], dataset="folder"))
    run_stage("aumaps", lambda: build_aumap_store_from_files(out / "au.h5", root / "manifest.csv", out / "lm.h5", spec["attrs"],
              n_jobs=2, chunk_size=8, backend="dask", progress=False))
"""


def build(root: Path, out: Path, engine: str) -> list[bytes]:
    """Landmark and AU-map stores of the faces under `root` built with `engine`, as bytes."""
    out.mkdir(parents=True, exist_ok=True)
    build_landmark_store(out / "lm.h5", root / "manifest.csv", root, {**LANDMARKS, "backend_joblib": engine}, dataset="folder")
    build_aumap_store_from_files(out / "au.h5", root / "manifest.csv", out / "lm.h5", ATTRS, n_jobs=2, chunk_size=8,
                                 backend=engine, progress=False)
    return [(out / "lm.h5").read_bytes(), (out / "au.h5").read_bytes()]


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """24 synthetic faces on disk with a manifest, and the loky-built stores' bytes (the reference)."""
    root = tmp_path_factory.mktemp("faces")
    rows, _ = write_faces(root, np.arange(N) % 7, np.array(["train"] * N), size=SIZE, prefix="f")
    rows.drop(columns="cue").to_csv(root / "manifest.csv", index=False)
    return root, build(root, root / "loky", "loky")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, started by a test and killed by its finalizer."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs, self.address = tmp, [], f"tcp://127.0.0.1:{free_port()}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `dask <args>` (this interpreter's dask command; its log in tmp), kept for the finalizer."""
        log = open(self.tmp / f"dask-{len(self.procs)}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([str(DASK), *args], env=env or self.env, stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def up(self, scheduler_env: dict[str, str] | None = None, worker_env: list[dict[str, str]] | None = None) -> None:
        """A scheduler and 2 single-threaded workers (no nanny: a killed worker stays dead), registered."""
        port = self.address.rsplit(":", 1)[1]
        self.start(["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"], {**self.env, **(scheduler_env or {})})
        for extra in worker_env or [{}, {}]:
            self.start(["worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                       {**self.env, **extra})
        with distributed.Client(self.address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)

    def start_stages(self, root: Path, out: Path) -> subprocess.Popen:
        """Both stages in a fresh process that finds this cluster through DASK_SCHEDULER_ADDRESS (killed by `stop`)."""
        spec = {"root": str(root), "out": str(out), "attrs": ATTRS, "lm": {**LANDMARKS, "backend_joblib": "dask"}}
        (self.tmp / "stages.py").write_text(STAGES)
        env = {**self.env, "DASK_SCHEDULER_ADDRESS": self.address}
        cmd = [sys.executable, str(self.tmp / "stages.py"), json.dumps(spec)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """Kill every process this cluster started (and wait for it)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An external cluster, torn down whatever the test does."""
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def slow_square(i: int) -> int:
    """A task whose early chunks finish last (so the results arrive out of order)."""
    time.sleep(0.02 * (5 - i % 5))
    return i * i


def test_ordered_map_keeps_order_and_bounds_chunks_in_flight() -> None:
    """Results come back in task order although they complete out of order, with at most `in_flight` tasks taken
    from the input ahead of the result being consumed (so memory does not grow with the number of chunks)."""
    pulled: list[int] = []

    def tasks() -> Iterator[tuple[int]]:
        for i in range(20):
            pulled.append(i)
            yield (i,)

    ahead = []
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=4, dashboard_address=":0") as client:
        out = []
        for value in ordered_map(slow_square, tasks(), client, what="test", in_flight=3):
            ahead.append(len(pulled) - len(out))
            out.append(value)
    assert out == [i * i for i in range(20)]
    assert max(ahead) == 3, ahead


def test_a_worker_with_another_model_file_refuses_to_run() -> None:
    """The model is loaded from each worker's own install: one whose file differs from the client's says so."""
    cfg = dlib68.Dlib68Config("hog", ())
    assert worker_model(cfg, dlib68.file_sha256(dlib68.model_path())) is dlib68.load(cfg)
    with pytest.raises(ValueError, match=r"its landmark model .* has sha256 .* the client's has 000000000000"):
        worker_model(cfg, "0" * 64)


def test_an_unreachable_scheduler_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", f"tcp://127.0.0.1:{free_port()}")
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ClusterError, match=r"cannot reach the dask scheduler at tcp://127\.0\.0\.1:\d+ \(DASK_SCHEDULER"),
        dask_client(2),
    ):
        pass


@pytest.mark.slow
def test_local_cluster_same_bytes_as_loky(faces: tuple[Path, list[bytes]], tmp_path: Path) -> None:
    """No DASK_SCHEDULER_ADDRESS: each stage starts a LocalCluster of n_jobs=2 worker processes, same bytes as loky."""
    root, reference = faces
    with pytest.raises(ValueError):  # no Client around: the stage must start (and close) its own cluster
        distributed.get_client()
    assert build(root, tmp_path / "dask", "dask") == reference
    with pytest.raises(ValueError):  # ... and it did close it
        distributed.get_client()


@pytest.mark.slow
def test_external_cluster_same_bytes_one_model_load_per_worker(faces: tuple[Path, list[bytes]], cluster: Cluster) -> None:
    """`dask scheduler` + 2 `dask worker` processes, reached through DASK_SCHEDULER_ADDRESS: same bytes as loky; each
    worker loaded the landmark model once, however many chunks it ran."""
    root, reference = faces
    cluster.up()
    stages = cluster.start_stages(root, cluster.tmp / "out")
    _, stderr = stages.communicate(timeout=240)
    assert stages.returncode == 0, stderr[-3000:]
    assert [(cluster.tmp / "out" / n).read_bytes() for n in ("lm.h5", "au.h5")] == reference

    def loads() -> tuple[int, int]:
        from fer_pipeline.landmarks import dlib68

        info = dlib68.load.cache_info()
        return info.misses, info.hits + info.misses

    with distributed.Client(cluster.address, timeout="30s") as client:
        per_worker = list(client.run(loads).values())
    assert sum(calls for _, calls in per_worker) == N // CHUNK, per_worker  # every chunk asked for the model ...
    assert all(misses == (calls > 0) for misses, calls in per_worker), per_worker  # ... and it was loaded once a worker


@pytest.mark.slow
@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["rescheduled", "gives-up"])
def test_worker_killed_mid_run(faces: tuple[Path, list[bytes]], cluster: Cluster, allowed_failures: int) -> None:
    """Worker 1 is SIGKILLed inside its first chunk. dask's default (3 allowed failures) reruns the lost chunk on worker
    2: same bytes. With none allowed the stage stops with a one-line error and leaves no store, not even a temp file."""
    root, reference = faces
    marker = cluster.tmp / "paused"
    pause = {"PYTHONPATH": f"{ROOT / 'tests' / 'killpoint'}{os.pathsep}{ROOT}",
             "FER_PAUSE": f"bin/dask|fer_pipeline.landmarks.parallel:run_chunk|1|{marker}"}
    cluster.up({"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures)}, [pause, {}])
    out = cluster.tmp / "out"
    stages = cluster.start_stages(root, out)
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and stages.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), "worker 1 never reached its first chunk"
    os.kill(int(marker.read_text()), signal.SIGKILL)
    _, stderr = stages.communicate(timeout=240)
    if allowed_failures:
        assert stages.returncode == 0, stderr[-3000:]
        assert [(out / n).read_bytes() for n in ("lm.h5", "au.h5")] == reference
    else:
        assert stages.returncode == 2, stderr[-3000:]
        errors = [line for line in stderr.splitlines() if line.startswith("landmarks: error:")]
        assert len(errors) == 1 and "lost landmarks chunk" in errors[0] and "nothing was written" in errors[0], stderr[-3000:]
        assert not out.exists() or not list(out.iterdir()), list(out.iterdir())

