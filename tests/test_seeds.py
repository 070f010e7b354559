"""Training seeds as a DVC dimension: `report.extra_seeds` (the params-seeds.yaml preset) adds one train stage per run
and seed, and each run's evaluation depends on them; the demo (no extra seeds) keeps today's stages and paths."""

from __future__ import annotations

from pathlib import Path

from fer_pipeline.core import paths
from fer_pipeline.core.presets import overlay_flags
from tests.conftest import ROOT, run, set_params


def stages(repo: Path) -> set[str]:
    return set(run(["dvc", "stage", "list", "--name-only"], repo).stdout.split())


def test_extra_seeds_add_stages_that_evaluate_waits_for(clone: Path) -> None:
    demo = stages(clone)
    assert {"train@cam-aus", "train-baseline@cam-noaus", "evaluate@cam-aus"} <= demo
    assert not any("seeds@" in s for s in demo)
    flags = overlay_flags(ROOT / "params-seeds.yaml", ROOT / "params.yaml")
    assert flags == ["-S", "report.extra_seeds=[1,2,3,4]"]
    set_params(clone, {"report.extra_seeds": [1, 2]})
    seeded = stages(clone)
    assert seeded - demo == {"train-seeds@cam-aus-1", "train-seeds@cam-aus-2", "train-baseline-seeds@cam-noaus-1",
                             "train-baseline-seeds@cam-noaus-2"}
    dag = run(["dvc", "dag", "--dot", "evaluate@cam-aus"], clone).stdout
    assert "train-seeds@cam-aus-2" in dag and "train@cam-aus" in dag and "train-seeds@cam-noaus" not in dag
    set_params(clone, {"report.posthoc": ["gradcam"]})  # a post-hoc method reads out every seed of the CAM model
    dag = run(["dvc", "dag", "--dot", "posthoc@gradcam-aus"], clone).stdout
    assert "train-seeds@cam-aus-2" in dag and "train@cam-aus" in dag and "train-seeds@cam-noaus" not in dag
    listed = run(["dvc", "stage", "list"], clone).stdout
    assert str(paths.seed_model_path("cam-aus", 2)) in listed and str(paths.model_path("cam-aus")) in listed
    bad = run(["python", "pipeline/train.py", "cam", "aus", "0"], clone, check=False)
    assert bad.returncode == 2 and "seed 0 is train.seed" in bad.stderr + bad.stdout
