"""`TrainConfig`: the params.yaml `train` section, cast and validated (`dvc exp run -S` may hand over strings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from fer_pipeline.core.io import parse_bool
from fer_pipeline.core.labels import NUM_CLASSES
from fer_pipeline.core.numerics import parse_mode

ALIGN_LOSSES = ("cos", "l1", "l2", "kl")
ATT_NORMS = ("none", "minmax")  # train.att_norm: T_l of the cos loss (fer_pipeline/models/loss.py)
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "off", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adamw")
CACHE_MODES = ("auto", "true", "false")
VALID_LAYERS = (1, 2, 3, 4, 5)
BALANCE_MODES = ("none", "weights", "sampler")  # train.balance (fer_pipeline/train/balance.py)
#: Why a params file with `train.method` fails: which methods train is the list `report.methods` (DVC's matrix makes a
#: train-baseline@<m>-noaus and a train@<m>-aus stage for each), so a `train.method` key would be silently ignored.
REMOVED_METHOD_KEY = ("train.method is not a parameter: the methods that train are the list report.methods (and those read "
                      "out post hoc, report.posthoc); delete train.method from the params or preset file and list the "
                      "method there, e.g. report: {methods: [wildcat]}")
#: What model.pt and the checkpoint fingerprint record of the train settings (`run_config`).
RECORDED = ("method", "backbone", "pretrained", "output_stride", "input_size", "align_loss", "epochs", "batch_size",
            "optimizer", "lr", "momentum", "weight_decay", "warmup_epochs", "seed")


def _as_number(name: str, value: Any, kind: type) -> Any:
    """Cast to int/float with an error naming the key (ints given as "4.0" are accepted)."""
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"train.{name}={value!r} is not a number") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"train.{name}={value!r} must be a whole number")
        return int(number)
    return number


def parse_layers(value: Any) -> tuple[int, ...]:
    """Layers from an int, a list, or a string such as "5,4" / "[5, 4]"; order kept, duplicates dropped."""
    if isinstance(value, str):
        parts = [p for p in value.strip().strip("[]()").replace(" ", ",").split(",") if p]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    layers = tuple(dict.fromkeys(_as_number("layers", p, int) for p in parts))
    if not layers:
        raise ValueError(f"train.layers={value!r} is empty; valid: one or more of {', '.join(map(str, VALID_LAYERS))}")
    bad = [layer for layer in layers if layer not in VALID_LAYERS]
    if bad:
        valid = ", ".join(map(str, VALID_LAYERS))
        raise ValueError(f"train.layers: {bad} not valid; valid: {valid} (1 = stem ... 5 = last stage)")
    return layers


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    """Lower-cased string that must be one of `valid`."""
    text = str(value).strip().lower()
    if text not in valid:
        raise ValueError(f"train.{name}={value!r} unknown; valid: {', '.join(valid)}")
    return text


@dataclass(frozen=True)
class TrainConfig:
    """Everything the training loop reads; `lam` is params' `lambda` (the with-AUs weight)."""

    method: str = "cam"
    backbone: str = "resnet18"
    pretrained: str = "none"
    output_stride: int = 32
    input_size: int = 112
    epochs: int = 6
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lam: float = 4.0
    layers: tuple[int, ...] = (5,)
    align_loss: str = "cos"
    att_norm: str = "none"
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    amp: str = "auto"
    resume: bool = False
    compile: bool = False
    cache_images: str = "auto"
    warmup_epochs: int = 1
    threads: int = 0
    balance: str = "none"
    cpu_kernels: str = "portable"  # portable (AVX2 caps, fixed threads: the same bytes on x86-64 machines) | native

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        """Build from the `train` dict: every field cast, unknown keys and bad values rejected with the valid choices."""
        names = {f.name: f for f in fields(cls)}
        raw = {("lam" if k == "lambda" else str(k)): v for k, v in params.items()}
        unknown = sorted(set(raw) - set(names))
        if unknown:
            valid = ", ".join(sorted("lambda" if n == "lam" else n for n in names))
            raise ValueError(f"unknown train key(s) {unknown}; valid: {valid}")
        kwargs: dict[str, Any] = {}
        for name, value in raw.items():
            default = names[name].default
            if name == "layers":
                kwargs[name] = parse_layers(value)
            elif isinstance(default, bool):
                kwargs[name] = parse_bool(f"train.{name}", value)
            elif isinstance(default, (int, float)):
                kwargs[name] = _as_number(name, value, type(default))
            else:
                kwargs[name] = "none" if value is None else str(value).strip()
        return cls(**kwargs)

    def __post_init__(self) -> None:
        """Validate ranges and choices (also for configs built directly in code)."""
        object.__setattr__(self, "layers", parse_layers(self.layers))
        object.__setattr__(self, "align_loss", _choice("align_loss", self.align_loss, ALIGN_LOSSES))
        object.__setattr__(self, "att_norm", _choice("att_norm", self.att_norm, ATT_NORMS))
        object.__setattr__(self, "device", _choice("device", self.device, DEVICES))
        object.__setattr__(self, "amp", _choice("amp", self.amp, AMP_MODES))
        object.__setattr__(self, "optimizer", _choice("optimizer", self.optimizer, OPTIMIZERS))
        object.__setattr__(self, "balance", _choice("balance", self.balance, BALANCE_MODES))
        object.__setattr__(self, "cpu_kernels", parse_mode(self.cpu_kernels))
        cache = self.cache_images if isinstance(self.cache_images, str) else str(bool(self.cache_images))
        object.__setattr__(self, "cache_images", _choice("cache_images", cache, CACHE_MODES))
        if self.lam < 0:
            raise ValueError(f"train.lambda={self.lam} must be >= 0 (0 = cross-entropy only)")
        if self.output_stride not in (8, 16, 32):
            raise ValueError(f"train.output_stride={self.output_stride} unknown; valid: 8, 16, 32")
        for name in ("input_size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)} must be >= 1")
        for name in ("num_workers", "warmup_epochs", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name}={getattr(self, name)} must be >= 0")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            got = f"lr={self.lr}, weight_decay={self.weight_decay}, momentum={self.momentum}"
            raise ValueError(f"train: need lr > 0, weight_decay >= 0, 0 <= momentum < 1; got {got}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (layers as a list, `lambda` spelled as in params.yaml)."""
        out = asdict(self)
        out["lambda"] = out.pop("lam")
        out["layers"] = list(self.layers)
        return out


def run_config(cfg: TrainConfig, lam: float, model_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What model.pt and the checkpoint fingerprint record about this run. `balance` is recorded when it is not
    `none`, so that a run without it keeps the bytes (and resumable checkpoints) it had before the key existed."""
    out: dict[str, Any] = {k: getattr(cfg, k) for k in RECORDED}
    if cfg.balance != "none":
        out["balance"] = cfg.balance
    extra = {"model_kwargs": dict(model_kwargs)} if model_kwargs else {}  # the method's options (they change the weights)
    layers = list(cfg.layers)
    if lam == 0:  # the baseline: nothing it records may depend on the alignment params (train-baseline's params lack them)
        out["align_loss"], layers = None, []
    else:  # the T_l the loss compared with A (cos: train.att_norm; l1 / l2 / kl: always min-max)
        out["att_norm"] = cfg.att_norm if cfg.align_loss == "cos" else "minmax"
    return {**out, "num_classes": NUM_CLASSES, "layers": layers, "lambda": float(lam), **extra}


def method_params(
    train: Mapping[str, Any], methods: Mapping[str, Any] | None, method: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train params, method options) for one method: keys of `methods.<method>` that name a `train` setting (backbone,
    input_size, pretrained, lr, ...) override it for that method only; the others are the method's options."""
    own = (methods or {}).get(method) or {}
    if not isinstance(own, Mapping):
        raise ValueError(f"methods.{method} must be a mapping of options, got {own!r}")
    settings = {"lambda"} | {f.name for f in fields(TrainConfig)} - {"method", "lam"}
    overrides = {k: v for k, v in own.items() if k in settings}
    options = {k: v for k, v in own.items() if k not in settings}
    return {**train, **overrides}, options
