"""Read a revision's runs for `fer review`: the workspace from disk, any git revision or `dvc exp` name via git.

A `dvc exp` name resolves to its git ref under `refs/exps` (what `dvc exp show` lists), so an experiment that was
never applied or committed can be reviewed as it is.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from fer_pipeline.core import paths
from fer_pipeline.evaluate.bootstrap import read_scores
from fer_pipeline.evaluate.headline import flatten
from fer_pipeline.review.compare import RunData

#: The revision name of the working tree.
WORKSPACE = "workspace"
METRICS_DIR = PurePosixPath("metrics")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)


def resolve(repo: Path, rev: str) -> str:
    """The commit of a git revision, or of the `dvc exp` experiment named `rev` (its ref under refs/exps)."""
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode == 0:
        return found.stdout.decode().strip()
    refs = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout.decode().split("\n")
    hits = [line.split()[1] for line in refs if line and line.split()[0].rsplit("/", 1)[-1] == rev]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ValueError(f"{rev!r} names {len(hits)} experiments under refs/exps; pass the commit (`dvc exp show`)")
    raise ValueError(f"{rev!r} is neither a git revision nor a `dvc exp` name in {repo}; list them with "
                     f"`git log --oneline` / `dvc exp show`")


def _run_ids(names: list[str]) -> list[str]:
    """Run ids from metrics file paths: metrics/<run>.json and metrics/x/<name>/<run>.json (the validation files under
    metrics/val/ are not reviewed: the test split is)."""
    out = []
    for name in names:
        p = PurePosixPath(name)
        if p.suffix != ".json" or METRICS_DIR not in p.parents:
            continue
        rel = p.relative_to(METRICS_DIR).with_suffix("")
        if rel.parts[0] != paths.VAL_DIR:
            out.append(rel.as_posix())
    return sorted(out)


def _read_runs(names: list[str], read: Callable[[str], bytes | None], where: str) -> dict[str, RunData]:
    """Each run's headline metrics, band and seed spread (details.json), and per-image scores where present."""
    runs = {}
    for run in _run_ids(names):
        raw = read(paths.metrics_path(run).as_posix())
        if raw is None:
            continue
        try:
            metrics = flatten(json.loads(raw))
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: {paths.metrics_path(run)} is not JSON ({e}); fix or regenerate it") from None
        details_raw = read(paths.details_path(run).as_posix())
        details = json.loads(details_raw) if details_raw else {}
        scores_raw = read(paths.scores_path(run).as_posix())
        scores = read_scores(io.BytesIO(scores_raw), f"{where}:{paths.scores_path(run)}") if scores_raw else None
        runs[run] = RunData(metrics, details.get("band") or {}, details.get("seeds") or {}, scores)
    return runs


def reader(repo: Path, rev: str) -> Callable[[str], bytes | None]:
    """`read(path) -> bytes | None` of a file at `rev`: the working tree for "workspace", else `git show`."""
    if rev == WORKSPACE:
        def read_file(rel: str) -> bytes | None:
            path = repo / rel
            return path.read_bytes() if path.is_file() else None

        return read_file
    commit = resolve(repo, rev)

    def read_blob(rel: str) -> bytes | None:
        blob = _git(repo, "show", f"{commit}:{rel}")
        return blob.stdout if blob.returncode == 0 else None

    return read_blob


def metric_files(repo: Path, rev: str) -> list[str]:
    """Every file under metrics/ at `rev` (repository-relative, posix)."""
    if rev == WORKSPACE:
        return [p.relative_to(repo).as_posix() for p in (repo / METRICS_DIR).rglob("*.json")]
    listed = _git(repo, "ls-tree", "-r", "--name-only", resolve(repo, rev), "--", METRICS_DIR.as_posix())
    return listed.stdout.decode().splitlines()


def read_runs(repo: Path, rev: str) -> dict[str, RunData]:
    """The runs at `rev`: the working tree ("workspace": what `dvc repro` last wrote), a git revision or a `dvc exp`."""
    return _read_runs(metric_files(repo, rev), reader(repo, rev), rev)


def commit_of(repo: Path, rev: str) -> str:
    """The commit `rev` names; the workspace is HEAD's commit with uncommitted changes ("HEAD+workspace")."""
    if rev == WORKSPACE:
        head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD").stdout.decode().strip()
        return f"{head}+workspace" if head else WORKSPACE
    return resolve(repo, rev)
