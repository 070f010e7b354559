"""Share a landmark store through a local-folder DVC remote: push, fresh clone, pull, and the stage is not rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_clone, run, set_params

pytestmark = pytest.mark.slow


def test_push_clone_pull_keeps_landmarks_up_to_date(tmp_path: Path) -> None:
    repo = make_clone(tmp_path / "repo")
    set_params(repo, {"synthetic.n": 21, "synthetic.size": 48, "landmarks.n_jobs": 1})
    run(["dvc", "repro", "landmarks"], repo)
    run(["dvc", "remote", "add", "-d", "team", str(tmp_path / "remote")], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "landmarks"], repo)
    run(["dvc", "push", "prepare", "landmarks"], repo)

    mate = tmp_path / "mate"
    run(["git", "clone", "-q", str(repo), str(mate)], tmp_path)
    store = "data/landmarks/synthetic.h5"
    assert not (mate / store).exists()
    run(["dvc", "pull", "prepare", "landmarks"], mate)
    assert (mate / store).read_bytes() == (repo / store).read_bytes()
    changed = set(json.loads(run(["dvc", "status", "--json"], mate).stdout or "{}"))
    assert changed and not changed & {"prepare", "landmarks"}  # downstream stages never ran; these two are up to date
    log = run(["dvc", "repro", "landmarks"], mate).stdout
    assert "Running stage" not in log and "didn't change" in log

    # Only the store pulled (the README's flow): prepare reruns to the same manifest bytes, landmarks is skipped.
    solo = tmp_path / "solo"
    run(["git", "clone", "-q", str(repo), str(solo)], tmp_path)
    run(["dvc", "pull", store], solo)
    log = run(["dvc", "repro", "landmarks"], solo).stdout
    assert "Running stage 'prepare'" in log and "Running stage 'landmarks'" not in log
    assert (solo / store).read_bytes() == (repo / store).read_bytes()
