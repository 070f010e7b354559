"""Shared fixtures: the repository root and a helper to make a throw-away git+DVC copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fer_pipeline.core.numerics import PORTABLE_THREADS, cpu_environment

# Before any test module imports torch: the suite runs under portable CPU kernels (AVX2 caps, a fixed thread count),
# so no verdict hangs on the vector units of the machine that runs it (docs/guides/reproducibility.md).
os.environ.update(cpu_environment("portable"))
# Two test workers share the cores (`make test`: pytest-xdist): idle OpenMP threads sleep instead of spinning on the
# core the other worker needs (as every stage script does; the policy changes timing, never the numbers).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with our interpreter's bin dir first on PATH and `cwd`'s package first on PYTHONPATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(cwd)}
    env.setdefault("GIT_AUTHOR_NAME", "t")
    env.setdefault("GIT_AUTHOR_EMAIL", "t@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "t")
    env.setdefault("GIT_COMMITTER_EMAIL", "t@example.com")
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


#: Test files whose tests go to the workers one by one: each trains its own model, the module fixtures are cheap.
SPLIT_FILES = ("tests/test_map_orientation.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Worker groups for `pytest -n 2 --dist loadgroup` (`make test`): every test that copies the reproduced clone runs
    on one worker, so its `dvc repro` runs once; every other file stays whole on one worker with its module fixtures,
    except `SPLIT_FILES`. Without pytest-xdist the marks do nothing."""
    for item in items:
        path = item.nodeid.split("::")[0]
        group = "reproduced" if "reproduced" in item.fixturenames else item.nodeid if path in SPLIT_FILES else path
        item.add_marker(pytest.mark.xdist_group(group))


#: Untracked files a developer may have added and not yet committed: copied so tests see them (never run outputs).
SOURCE_DIRS = ("fer_pipeline", "pipeline", "tests", "benchmarks")


def project_files(root: Path = ROOT) -> list[str]:
    """What the project tracks (with uncommitted edits) plus untracked, not-ignored source files: never the outputs of a
    run (`make repro` rewrites tracked outputs such as metrics/ and dvc.lock in place: they are copied as committed)."""
    def ls(*args: str) -> list[str]:
        out = subprocess.run(["git", "ls-files", "-z", *args], cwd=root, capture_output=True, text=True, check=True).stdout
        return [f for f in out.split("\0") if f]

    return sorted(set(ls()) | set(ls("-o", "--exclude-standard", "--", *SOURCE_DIRS)))


#: Tracked outputs of `dvc repro` (committed baseline): a clone takes their committed bytes, not the workspace's.
OUTPUT_PREFIXES = ("dvc.lock", "metrics/", "plots/", "reports/", "figures/", "dvclive/")


def make_clone(dest: Path) -> Path:
    """A fresh git repo holding the project's files (`project_files`); run outputs as committed at HEAD."""
    for rel in project_files():
        src = ROOT / rel
        target = dest / rel
        if rel.startswith(OUTPUT_PREFIXES):
            blob = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True, check=False)
            if blob.returncode:
                continue  # an output not committed yet
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.stdout)
        elif src.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "clone"], dest)
    return dest


def set_params(repo: Path, updates: dict[str, object]) -> None:
    """Set dotted keys (`train.lambda`) in the clone's params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for key, value in updates.items():
        node = params
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def favour_class(src: Path, dst: Path, label: int, shift: float = 1e3) -> Path:
    """A copy of the CAM model file `src` whose classifier bias favours class `label` by `shift`: it predicts `label` for
    any input, and its maps (which the bias does not enter) are unchanged. Makes the branch a test scores certain."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt["state_dict"]["head.fc.bias"][label] += shift
    torch.save(ckpt, dst)
    return dst


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A throw-away copy of the repository as its own git repo."""
    return make_clone(tmp_path / "repo")


#: The end-to-end tests' pipeline: the demo's stages and defaults at the smallest size that trains and evaluates every
#: run (2 epochs: the kill test resumes after the first; AUs 60% present: an active-AU map has absent AUs to score).
TINY = {
    "synthetic.n": 56,
    "synthetic.size": 64,
    "synthetic.au_presence": 0.6,
    "train.backbone": "resnet10t",  # the smallest timm ResNet: 4x cheaper than resnet18, same code paths
    "train.input_size": 32,
    "train.epochs": 2,
    "train.batch_size": 8,
    "train.device": "cpu",
    "train.threads": 1,  # tiny models: one thread is fastest (a fixed count: the bytes depend on it)
    "evaluate.faithfulness_n": 4,
    "evaluate.deletion_steps": 4,
    "evaluate.figure_samples": 1,
    "aumaps.n_jobs": 1,
    "landmarks.n_jobs": 1,
    "report.methods": ["cam"],
    "pretrain.n": 70,  # the pretrain stage runs as in the demo, on 70 faces for 1 epoch
    "pretrain.epochs": 1,
    "pretrain.batch_size": 16,
}


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone with `TINY` params, `dvc repro`'d once per pytest run and committed: never changed, only copied
    (`repro_clone`). Its copies are up to date, so each end-to-end test reruns only what its own changes touch."""
    repo = make_clone(tmp_path_factory.mktemp("reproduced") / "repo")
    set_params(repo, TINY)
    (repo.parent / "repro.log").write_text(run(["dvc", "repro"], repo).stdout)  # what ran: tests/test_pipeline.py reads it
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "tiny params, reproduced"], repo)
    return repo


@pytest.fixture
def repro_clone(reproduced: Path, tmp_path: Path) -> Path:
    """A copy of the reproduced clone (work tree with every output, git history, DVC cache, training
    checkpoints) for one test to change. Links are copied as files, and DVC's state (.dvc/tmp) is left behind: the copy
    shares nothing with the original, and DVC hashes its files afresh."""
    dest = tmp_path / "repo"
    shutil.copytree(reproduced, dest, ignore=lambda folder, _: ["tmp"] if Path(folder).name == ".dvc" else [])
    return dest


@pytest.fixture(autouse=True)
def _portable_threads() -> None:
    """Every test starts at the portable thread count. A training sets the count process-wide, and the count changes
    the bytes: without this, a later test's numbers (and a verdict that hangs on them) would depend on test order."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(PORTABLE_THREADS)
