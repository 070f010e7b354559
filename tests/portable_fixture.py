"""The portable-numerics fixture: a tiny training of the demo model whose output hashes are committed.

280 synthetic faces (the project's generator), the demo's `pretrain` task on 70 other faces for 1 epoch (the weights
the run starts from, as stage pretrain gives them), the demo's `train` settings of params.yaml for 2 epochs under
portable CPU kernels with augmentation filling as `align.border` says, then the evaluation of the test split: the
sha256 of `model.pt`, of the headline metrics JSON and of every metric (`details.json`). tests/test_portable.py
retrains and compares on whatever machine runs the suite, so each machine is a cross-machine check. Regenerate after
a change to the training, the evaluation or params.yaml's `train`, `pretrain` or `align.border` (and commit the file):

    python -m tests.portable_fixture --write
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from fer_pipeline.core.numerics import PORTABLE_THREADS, cpu_environment, cpu_report

os.environ.update(cpu_environment("portable"))  # before torch loads, as a stage does (stage_environment)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FIXTURE = Path(__file__).with_name("portable_fixture.json")
ROOT = Path(__file__).resolve().parents[1]
N_FACES, SIZE, EPOCHS = 280, 64, 2
#: The outputs whose sha256 the fixture holds.
OUTPUTS = ("model.pt", "metrics.json", "details.json")
RESULT = "RESULT"  # the line prefix of the machine-readable result


def demo_config() -> Any:
    """The demo's `train` settings (params.yaml, with the method's overrides) for `EPOCHS` epochs on CPU, portable."""
    from fer_pipeline.core.io import load_params
    from fer_pipeline.core.train_config import TrainConfig, method_params

    params = load_params(ROOT / "params.yaml")
    method = str(params["report"]["methods"][0])  # the demo trains one method
    train, _ = method_params(params["train"], params.get("methods"), method)
    fixed = {"method": method, "epochs": EPOCHS, "device": "cpu", "cpu_kernels": "portable", "threads": 0, "num_workers": 0,
             "resume": False, "compile": False}
    return TrainConfig.from_params({**train, **fixed})


def pretrained_weights(work: Path, cfg: Any) -> str:
    """The demo's `pretrain` task, shrunk to 70 faces and 1 epoch, saved in `work` as stage pretrain saves it; its name
    relative to `work` ("none" when the demo does not pretrain)."""
    import torch

    from fer_pipeline.core.io import load_params
    from fer_pipeline.train.pretrain import PretrainConfig, pretrain_backbone

    pcfg = PretrainConfig.from_params({**load_params(ROOT / "params.yaml").get("pretrain", {}), "n": 70, "epochs": 1,
                                       "batch_size": 16})
    if pcfg.task == "none":
        return "none"
    state, _ = pretrain_backbone(pcfg, cfg)
    torch.save({"state_dict": state}, work / "backbone.pt")
    return "backbone.pt"  # relative to `work`, where the training runs: model.pt records the name, not a temp path


def run_fixture(work: Path) -> dict[str, str]:
    """Generate the faces, train, evaluate in `work`; sha256 of each of `OUTPUTS`."""
    import numpy as np
    import torch

    from fer_pipeline.core.labels import NUM_CLASSES
    from fer_pipeline.data.manifest import stratified_split
    from fer_pipeline.evaluate.run import evaluate_model, write_outputs
    from fer_pipeline.train import train_model
    from tests.faces import write_faces

    torch.set_num_threads(PORTABLE_THREADS)  # the evaluation's count too (earlier tests may have changed it)
    labels = np.random.default_rng(0).permutation(np.arange(N_FACES) % NUM_CLASSES)
    split = stratified_split(labels, val_fraction=0.15, test_fraction=0.2, seed=0)
    data = work / "faces"
    manifest = write_faces(data, labels, split, size=SIZE, prefix="p")[0]
    from fer_pipeline.align.warp import augment_border
    from fer_pipeline.core.io import load_params

    cfg = demo_config()
    cfg = dataclasses.replace(cfg, pretrained=pretrained_weights(work, cfg))
    border = augment_border(load_params(ROOT / "params.yaml").get("align"))
    cwd = Path.cwd()
    os.chdir(work)  # DVCLive looks for a repository from the working directory: keep it out of ours
    try:
        train_model(cfg, lam=cfg.lam, manifest=manifest, image_root=data, aumap_path=data / "aumaps.h5",
                    model_out=work / "model.pt", live_dir=None, augment_border=border)
    finally:
        os.chdir(cwd)
    result = evaluate_model(work / "model.pt", manifest=manifest, image_root=data, aumap_path=data / "aumaps.h5", device="cpu")
    write_outputs(result, work / "metrics.json", work)
    return {name: hashlib.sha256((work / name).read_bytes()).hexdigest() for name in OUTPUTS}


def compute() -> dict[str, str]:
    """`run_fixture` in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        return run_fixture(Path(tmp))


def committed(path: Path = FIXTURE) -> dict[str, Any]:
    """The committed fixture: {"sha256": {output: hash}, "made_on": the CPU report of the machine that wrote it}."""
    return json.loads(Path(path).read_text())


def write(hashes: dict[str, str], report: list[str], path: Path = FIXTURE) -> None:
    """Write the fixture file `committed` reads (what `--write` does after the run)."""
    Path(path).write_text(json.dumps({"sha256": hashes, "made_on": report}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Compute (and with --write, commit) the portable-numerics fixture's hashes.")
    ap.add_argument("--write", action="store_true", help=f"write {FIXTURE.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    hashes = compute()
    report = cpu_report().splitlines()
    print(RESULT, json.dumps({"sha256": hashes, "machine": report}))
    if args.write:
        write(hashes, report)
        print(f"wrote {FIXTURE}")
    elif committed()["sha256"] != hashes:
        print(f"differs from {FIXTURE.name}: {committed()['sha256']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
