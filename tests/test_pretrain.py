"""Stage `pretrain`: its params, the rotation task's targets, other faces than the runs', and weights that every run's
backbone loads (`train.pretrained`), including the clear refusal of a `pretrain.task: none` file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fer_pipeline.core.train_config import TrainConfig
from fer_pipeline.models.backbone import Backbone
from fer_pipeline.train.pretrain import (
    PretrainConfig,
    check_disjoint,
    pretrain_backbone,
    pretrain_faces,
    task_batch,
)


def test_params_are_cast_and_checked() -> None:
    cfg = PretrainConfig.from_params({"task": "Expression", "n": "700", "epochs": "2.0", "lr": "0.01"})
    assert (cfg.task, cfg.n, cfg.epochs, cfg.lr) == ("expression", 700, 2, 0.01)
    with pytest.raises(ValueError, match="pretrain.task='jigsaw' unknown; valid: none, rotation, expression"):
        PretrainConfig(task="jigsaw")
    with pytest.raises(ValueError, match="unknown key"):
        PretrainConfig.from_params({"taks": "rotation"})
    with pytest.raises(ValueError, match="pretrain.n=7: need at least 70 faces"):
        PretrainConfig(n=7)
    with pytest.raises(ValueError, match="equals synthetic.seed"):
        check_disjoint(PretrainConfig(seed=3), 3, "synthetic")
    check_disjoint(PretrainConfig(seed=3), 3, "rafdb")  # real runs: synthetic pretraining faces are never theirs
    check_disjoint(PretrainConfig(seed=3, task="none"), 3, "synthetic")


def test_rotation_targets_and_other_faces() -> None:
    faces, labels = pretrain_faces(PretrainConfig(n=70, seed=5, image_size=48), 32)
    assert faces.shape == (70, 32, 32, 3) and faces.dtype == np.uint8 and set(labels.tolist()) == set(range(7))
    runs_faces, _ = pretrain_faces(PretrainConfig(n=70, seed=0, image_size=48), 32)
    assert not np.array_equal(faces[0], runs_faces[0])  # another generator seed: other people
    x = torch.from_numpy(faces[:8]).permute(0, 3, 1, 2).float()
    turned, k = task_batch("rotation", x, torch.from_numpy(labels[:8]), torch.Generator(), train=False)
    assert k.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    for i in range(8):
        assert torch.equal(turned[i], torch.rot90(x[i], k[i].item(), dims=(1, 2)))
    same, y = task_batch("expression", x, torch.from_numpy(labels[:8]), torch.Generator(), train=False)
    assert torch.equal(same, x) and y.tolist() == labels[:8].tolist()


def test_pretrained_weights_load_into_every_runs_backbone(tmp_path: Path) -> None:
    """A tiny pretraining (70 faces, 1 epoch): its weights load into the runs' backbone at the runs' stride, and the
    file of a `task: none` stage is refused with what to set."""
    cfg = PretrainConfig(task="rotation", n=70, epochs=1, batch_size=16, image_size=48)
    state, summary = pretrain_backbone(cfg, TrainConfig(backbone="resnet10t", input_size=32))
    assert summary["task"] == "rotation" and summary["chance_acc"] == 25.0 and summary["steps"] == 3
    assert 0.0 <= summary["held_out_acc"] <= 100.0 and len(summary["history"]) == 1
    path = tmp_path / "backbone.pt"
    torch.save({"state_dict": state, "pretrain": {"task": "rotation"}}, path)
    body = Backbone("resnet10t", pretrained=str(path), output_stride=8).body
    loaded = body.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    fresh = Backbone("resnet10t", pretrained="none", output_stride=8).body.state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in state.items() if v.is_floating_point())
    torch.save({"pretrain": {"task": "none"}}, path)
    with pytest.raises(ValueError, match="pretrain.task: none"):
        Backbone("resnet10t", pretrained=str(path))
