"""The timm feature extractor every method sits on: layers 1..5 = stem + four stages (5 = last).

`pretrained` is "none" (random init, for machines without internet), a timm pretrained name such
as "resnet18.a1_in1k" (downloaded once into the Hugging Face cache, so the first run needs
internet), or a local weights file (.pt/.pth/.bin/.safetensors, a plain or wrapped state_dict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import get_arch_name
from torch import Tensor, nn

from fer_pipeline.core.io import load_error_reason

MAX_LAYERS = 5
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
#: Wrappers seen around state_dicts (DDP, our own model.pt, Lightning) stripped before matching.
_PREFIXES = ("module.", "backbone.body.", "backbone.", "model.", "encoder.")


def is_weights_file(pretrained: str) -> bool:
    """True when `pretrained` names a local file rather than a timm model name."""
    p = Path(pretrained)
    return p.exists() or p.suffix.lower() in WEIGHT_SUFFIXES


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """Load a state_dict from a file, unwrapping {"state_dict": ...} / {"model": ...} checkpoints."""
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {path} not found")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, non-tensor payloads
        raise ValueError(f"cannot read pretrained weights from {path}: {load_error_reason(e)}") from None
    if isinstance(sd, dict) and "state_dict" not in sd and (sd.get("pretrain") or {}).get("task") == "none":
        raise ValueError(f"{path} holds no weights: stage pretrain ran with pretrain.task: none; set pretrain.task "
                         f"(rotation | expression) or train.pretrained: none")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise ValueError(f"{path} does not hold a state_dict (a mapping of parameter names to tensors)")
    return sd


def _match_keys(sd: dict[str, Tensor], wanted: set[str]) -> dict[str, Tensor]:
    """Strip the first wrapper prefix that makes the keys line up with `wanted`."""
    best, hits = sd, len(wanted & sd.keys())
    for prefix in _PREFIXES:
        cand = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        n = len(wanted & cand.keys())
        if n > hits:
            best, hits = cand, n
    return best


def load_weights_file(body: nn.Module, path: str | Path) -> None:
    """Load backbone weights from a local file; classifier keys (fc, head) are ignored, anything else must match."""
    path = Path(path)
    own = body.state_dict()
    sd = _match_keys(_read_state_dict(path), set(own))
    missing = sorted(k for k in own if k not in sd)
    wrong = sorted(k for k in own if k in sd and sd[k].shape != own[k].shape)
    if missing or wrong:
        lines = [f"pretrained weights {path} do not fit this backbone:"]
        if missing:
            lines.append(f"  {len(missing)} missing keys, e.g. {missing[:5]}")
        if wrong:
            eg = ", ".join(f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:5])
            lines.append(f"  {len(wrong)} shape mismatches, e.g. {eg}")
        lines.append(f"  (file keys look like {sorted(sd)[:3]})")
        raise ValueError("\n".join(lines))
    body.load_state_dict({k: sd[k] for k in own}, strict=True)


def check_pretrained_name(name: str, pretrained: str) -> None:
    """Refuse (before any download) a timm pretrained tag that belongs to another architecture than `name`."""
    arch = get_arch_name(pretrained)
    known = timm.list_pretrained(get_arch_name(name) + ".*")
    if arch != get_arch_name(name) or (pretrained != arch and pretrained not in known):
        raise ValueError(f"pretrained {pretrained!r} is not 'none', an existing weights file, or a timm pretrained "
                         f"name of backbone {name!r} (e.g. {', '.join(known[:4]) or name})")


class Backbone(nn.Module):
    """A timm `features_only` network returning one feature map per layer name (1..5, last = 5)."""

    def __init__(
        self, name: str = "resnet18", pretrained: str = "none", output_stride: int = 32, levels: int | None = None
    ) -> None:
        """`levels` keeps only the first feature levels (a truncated stem, as APViT's); their names stay counted back from 5."""
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        kwargs: dict[str, Any] = {"features_only": True}
        if output_stride != 32:  # not every timm model accepts the argument; 32 is everyone's default
            kwargs["output_stride"] = output_stride
        if levels is not None:
            kwargs["out_indices"] = tuple(range(int(levels)))
        pretrained = str(pretrained or "none")
        if pretrained.lower() == "none":
            self.body = timm.create_model(name, pretrained=False, **kwargs)
        elif is_weights_file(pretrained):
            self.body = timm.create_model(name, pretrained=False, **kwargs)
            load_weights_file(self.body, pretrained)
        else:
            check_pretrained_name(name, pretrained)
            self.body = timm.create_model(pretrained, pretrained=True, **kwargs)
        info = self.body.feature_info
        n = len(info.channels())  # the kept levels (len(info) counts every level the network has)
        if n > MAX_LAYERS:
            raise ValueError(f"backbone {name!r} exposes {n} feature levels; this pipeline names at most {MAX_LAYERS} (1..5)")
        #: Layer names counted back from 5 so that 5 is always the last stage (the paper's default layer).
        self.layer_names: tuple[int, ...] = tuple(range(MAX_LAYERS - n + 1, MAX_LAYERS + 1))
        self.channels: dict[int, int] = dict(zip(self.layer_names, info.channels(), strict=True))
        self.reductions: dict[int, int] = dict(zip(self.layer_names, info.reduction(), strict=True))
        self.module_names: dict[int, str] = dict(zip(self.layer_names, info.module_name(), strict=True))
        #: Channels of the tensor a head reads (the last layer).
        self.head_channels: int = self.channels[self.layer_names[-1]]
        cfg = getattr(self.body, "pretrained_cfg", None) or {}
        self.mean: tuple[float, ...] = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
        self.std: tuple[float, ...] = tuple(cfg.get("std", (0.229, 0.224, 0.225)))

    def stage(self, layer: int) -> nn.Module:
        """The module producing layer `layer` (a target layer for hooks / GradCAM)."""
        if layer not in self.module_names:
            raise ValueError(f"layer {layer} not in {self.layer_names}")
        return self.body.get_submodule(self.module_names[layer].replace(".", "_"))

    def forward(self, x: Tensor) -> list[Tensor]:
        """All layers' features, in layer order (the network computes them anyway)."""
        return list(self.body(x))
