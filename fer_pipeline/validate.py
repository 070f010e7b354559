"""Params checks run at the start of every stage, and the stage runner that prints them as one-line errors.

Each stage script calls `check_stage(stage, params)` before any work, so a typo (`landmarks.backend: dlib`,
`train.lambda: -1`, `train.layers: [6]`, a missing `data.root`) fails in a second with a line that names the key
and lists the valid choices, not an hour later inside a library. The choices come from the registries that own
them (datasets, landmark backends, codebooks, methods): one place each. Sits above the areas (it reads their
registries); it imports torch only for the train stage.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fer_pipeline.core.cluster import ENGINES, ClusterError
from fer_pipeline.core.codebook import CODEBOOKS
from fer_pipeline.data.images import ImageError

STAGES = ("prepare", "landmarks", "align", "aus", "aumaps", "train", "evaluate", "report")


class ParamsError(ValueError):
    """A params.yaml value that cannot work; the message is one line: key, value, valid choices."""


def get(params: Mapping[str, Any], dotted: str) -> Any:
    """`params["a"]["b"]` for "a.b"; ParamsError naming the missing key."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ParamsError(f"params.yaml: missing {dotted}; add it (the repository's params.yaml lists every key)")
        node = node[part]
    return node


def choice(params: Mapping[str, Any], dotted: str, valid: Sequence[str]) -> str:
    """A string that must be one of `valid`."""
    value = get(params, dotted)
    if str(value) not in valid:
        raise ParamsError(f"{dotted}={value!r} unknown; valid: {', '.join(valid)}")
    return str(value)


def number(
    params: Mapping[str, Any],
    dotted: str,
    kind: type = float,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Any:
    """An int/float (strings such as "4.0" from `dvc exp run -S` accepted) inside [lo, hi] (open ends on request)."""
    value = get(params, dotted)
    try:
        if isinstance(value, bool):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        raise ParamsError(f"{dotted}={value!r} is not a number") from None
    if not math.isfinite(x):
        raise ParamsError(f"{dotted}={value!r} is not a finite number")
    if kind is int and not x.is_integer():
        raise ParamsError(f"{dotted}={value!r} must be a whole number")
    low = lo is not None and (x <= lo if lo_open else x < lo)
    high = hi is not None and (x >= hi if hi_open else x > hi)
    if low or high:
        left = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
        right = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
        raise ParamsError(f"{dotted}={value!r} out of range; valid: {' and '.join(p for p in (left, right) if p)}")
    return int(x) if kind is int else x


def n_jobs(params: Mapping[str, Any], dotted: str) -> int:
    """A joblib worker count: >= 1, or negative for "all cores but |n|-1" (0 means nothing to joblib)."""
    value = number(params, dotted, int)
    if value == 0:
        raise ParamsError(f"{dotted}=0 is not a worker count; valid: 1, 2, ... or -1 (every core)")
    return value


def flag(params: Mapping[str, Any], dotted: str) -> bool:
    """A boolean (YAML or a `-S key=false` string)."""
    from fer_pipeline.core.io import parse_bool

    try:
        return parse_bool(dotted, get(params, dotted))
    except ValueError as e:
        raise ParamsError(str(e)) from None


def check_data(params: Mapping[str, Any], *, reads_images: bool) -> None:
    """`data.*`: a known dataset; for a real one, a root folder that exists (where images are read)."""
    from fer_pipeline.data.datasets import DATASETS

    dataset = choice(params, "data.dataset", DATASETS)
    number(params, "data.seed", int)
    number(params, "data.val_fraction", lo=0.0, hi=1.0, hi_open=True)
    data = params.get("data") or {}
    if "folds" in data:  # k-fold by subject (split-less folders, data.group)
        folds = number(params, "data.folds", int, lo=0)
        if folds > 1:
            number(params, "data.fold", int, lo=0, hi=folds - 1)
    if dataset == "synthetic":
        number(params, "data.test_fraction", lo=0.0, hi=1.0, hi_open=True)
    elif reads_images:
        root = Path(str(get(params, "data.root")))
        if not root.is_dir():
            raise ParamsError(
                f"data.root={str(root)!r} does not exist or is not a folder (data.dataset={dataset}); "
                "put the dataset there or point data.root at it"
            )


def check_synthetic(params: Mapping[str, Any]) -> None:
    """`synthetic.*` (read only when data.dataset is synthetic)."""
    number(params, "synthetic.n", int, lo=21)
    number(params, "synthetic.size", int, lo=32)
    number(params, "synthetic.seed", int)
    intensity = get(params, "synthetic.intensity")
    if not isinstance(intensity, (list, tuple)) or len(intensity) != 2:
        raise ParamsError(f"synthetic.intensity={intensity!r} must be a [low, high] pair, e.g. [0.5, 1.0]")
    lo, hi = (number({"v": v}, "v") for v in intensity)
    if not 0 <= lo <= hi:
        raise ParamsError(f"synthetic.intensity={intensity!r} needs 0 <= low <= high")
    for key in ("shortcut_p_train", "shortcut_p_test", "au_presence"):
        number(params, f"synthetic.{key}", lo=0.0, hi=1.0)
    if "class_weights" in get(params, "synthetic"):
        from fer_pipeline.data.datasets import parse_class_weights, synthetic_labels

        try:
            synthetic_labels(int(get(params, "synthetic.n")), 0, parse_class_weights(get(params, "synthetic.class_weights")))
        except ValueError as e:
            raise ParamsError(str(e)) from None
    if "canvas" in get(params, "synthetic"):  # optional: 0 = the aligned-crop demo
        canvas, size = number(params, "synthetic.canvas", int, lo=0), number(params, "synthetic.size", int)
        if 0 < canvas <= size:
            raise ParamsError(f"synthetic.canvas={canvas} must be 0 (off) or larger than synthetic.size={size}")


def check_landmarks(params: Mapping[str, Any]) -> None:
    """`landmarks.*`: a registered backend, noise >= 0, a worker count."""
    from fer_pipeline.landmarks.extract import BACKENDS, _as_list
    from fer_pipeline.landmarks.options import DETECTORS, FALLBACKS

    backend = choice(params, "landmarks.backend", tuple(BACKENDS))
    number(params, "landmarks.noise", lo=0.0)
    number(params, "landmarks.seed", int)
    n_jobs(params, "landmarks.n_jobs")
    number(params, "landmarks.chunk_size", int, lo=1)
    if get(params, "landmarks").get("min_quality") is not None:  # 0 / absent / null = off
        number(params, "landmarks.min_quality", lo=0.0)
    if backend == "dlib68":
        choice(params, "landmarks.detector", DETECTORS)
        choice(params, "landmarks.backend_joblib", ENGINES)
        bad = [f for f in _as_list(get(params, "landmarks.fallback")) if f not in FALLBACKS]
        if bad:
            raise ParamsError(f"landmarks.fallback has {bad}; valid steps: {', '.join(FALLBACKS)} (a list, tried in order)")


def check_align(params: Mapping[str, Any]) -> None:
    """`align.*`: a known mode (or auto), a template (head height / frame side) and size `Alignment` accepts, workers."""
    from fer_pipeline.align.framing import AUTO, CHOICES
    from fer_pipeline.align.warp import BORDERS, LEGACY_BORDER, Alignment

    mode = choice(params, "align.mode", CHOICES)
    mode = "similarity" if mode == AUTO else mode  # auto resolves to a warping mode: check the rest as one
    template = number(params, "align.template", lo=0.2, hi=1.5)
    size = number(params, "align.size", int, lo=16)
    border = choice(params, "align.border", tuple(BORDERS)) if "border" in (params.get("align") or {}) else LEGACY_BORDER
    Alignment(mode, template, size, border)
    n_jobs(params, "align.n_jobs")
    number(params, "align.chunk_size", int, lo=1)
    choice(params, "align.backend_joblib", ENGINES)


def check_aus(params: Mapping[str, Any]) -> None:
    """`aus.*`: a known source; `synthetic` only for the synthetic dataset."""
    from fer_pipeline.aus.store import SOURCES

    source = choice(params, "aus.source", SOURCES)
    get(params, "aus.file")
    if source == "synthetic" and get(params, "data.dataset") != "synthetic":
        raise ParamsError(f"aus.source=synthetic needs data.dataset=synthetic (got {get(params, 'data.dataset')!r}); use import")


def check_aumaps(params: Mapping[str, Any]) -> None:
    """`aumaps.*`: a known codebook and mode, a map size, radius > 0, smoothing >= 0, a worker count."""
    from fer_pipeline.aumaps.active import MODES

    choice(params, "aumaps.codebook", tuple(CODEBOOKS))
    number(params, "aumaps.size", int, lo=1)
    number(params, "aumaps.radius", lo=0.0, lo_open=True)
    number(params, "aumaps.smoothing", lo=0.0)
    n_jobs(params, "aumaps.n_jobs")
    number(params, "aumaps.chunk_size", int, lo=1)
    choice(params, "aumaps.backend_joblib", ENGINES)
    choice(params, "aumaps.mode", MODES)
    flag(params, "aumaps.restrict_to_codebook")


def check_train(params: Mapping[str, Any], method: str) -> tuple[Any, dict[str, Any]]:
    """`train.*` with `methods.<method>`'s overrides, cast into a TrainConfig (λ >= 0, layers 1..5, known losses and
    devices, ...), a registered method and a timm backbone; returns (TrainConfig, the method's own options). The method
    is the stage's argument (DVC's matrix over `report.methods`), never a `train` key."""
    import timm

    from fer_pipeline.core.train_config import REMOVED_METHOD_KEY, TrainConfig, method_params
    from fer_pipeline.models import list_methods

    if "method" in get(params, "train"):
        raise ParamsError(REMOVED_METHOD_KEY)
    name = str(method).lower()
    methods = list_methods()
    if name not in methods:
        raise ParamsError(f"method {name!r} unknown; valid: {', '.join(methods)} (list the methods that train in report.methods)")
    try:
        train, options = method_params(get(params, "train"), params.get("methods"), name)
        cfg = TrainConfig.from_params({**train, "method": name})
    except ValueError as e:  # TrainConfig's own one-line messages (they list the valid choices)
        raise ParamsError(str(e)) from None
    if not timm.is_model(cfg.backbone.split(".")[0]):
        raise ParamsError(f"train.backbone={cfg.backbone!r} is not a timm model; valid: a timm.list_models() name, e.g. resnet18")
    return cfg, options


def check_evaluate(params: Mapping[str, Any]) -> None:
    """`evaluate.*` and the device it borrows from `train`."""
    number(params, "evaluate.batch_size", int, lo=1)
    for key, low in (("faithfulness_n", 0), ("deletion_steps", 1), ("figure_samples", 0)):
        if key in get(params, "evaluate"):  # optional: the stage has defaults
            number(params, f"evaluate.{key}", int, lo=low)
    from fer_pipeline.core.train_config import DEVICES

    if "device" in get(params, "train"):
        choice(params, "train.device", DEVICES)


def _method_list(params: Mapping[str, Any], key: str, *, empty_ok: bool) -> list[str]:
    """`report.<key>` as a list of distinct names (a `-S` string "a,b" is accepted)."""
    value = get(params, key) if not empty_ok else (params.get("report") or {}).get(key.split(".")[-1]) or []
    names = [m.strip() for m in value.strip("[]").split(",") if m.strip()] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(m, str) and m for m in names) or (not names and not empty_ok):
        raise ParamsError(f"{key}={value!r} must be a {'' if empty_ok else 'non-empty '}list of method names, e.g. [cam]")
    if len(set(names)) != len(names):
        raise ParamsError(f"{key}={value!r} lists a method twice")
    return names


def check_report(params: Mapping[str, Any]) -> None:
    """`report.methods` (methods that train) and `report.posthoc` (read out post hoc from a trained method's model)."""
    from fer_pipeline.models import is_posthoc, list_methods, trained_method

    methods = _method_list(params, "report.methods", empty_ok=False)
    posthoc = _method_list(params, "report.posthoc", empty_ok=True)
    for name in methods + posthoc:
        if name.lower() not in list_methods():
            raise ParamsError(f"report: method {name!r} unknown; valid: {', '.join(list_methods())}")
    for name in methods:
        if is_posthoc(name):
            raise ParamsError(f"report.methods lists {name}, which is post hoc (no training): move it to report.posthoc")
    for name in posthoc:
        if not is_posthoc(name):
            raise ParamsError(f"report.posthoc lists {name}, which trains: move it to report.methods")
        if trained_method(name) not in methods:
            raise ParamsError(f"report.posthoc lists {name}, which reads the {trained_method(name)} model: "
                              f"add {trained_method(name)} to report.methods")


def check_stage(stage: str, params: Mapping[str, Any], **kwargs: Any) -> Any:
    """Validate what `stage` reads; returns (TrainConfig, method options) for "train", else None."""
    if stage not in STAGES:
        raise ParamsError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    check_data(params, reads_images=stage in ("prepare", "landmarks", "align", "train", "evaluate"))
    if stage == "prepare" and get(params, "data.dataset") == "synthetic":
        check_synthetic(params)
    elif stage == "landmarks":
        check_landmarks(params)
    elif stage == "align":
        check_align(params)
    elif stage == "aus":
        check_aus(params)
    elif stage == "aumaps":
        check_aumaps(params)
    elif stage == "train":
        if not kwargs.get("method"):
            raise ParamsError("train: name the method to train (pipeline/train.py METHOD noaus|aus; "
                              "DVC passes each of report.methods)")
        return check_train(params, kwargs["method"])
    elif stage == "evaluate":
        check_evaluate(params)
    elif stage == "report":
        check_report(params)
    return None


#: Errors a stage reports as one line (every message in fer_pipeline names the file/row/key and what to do).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, ImageError, ClusterError)


def stage_args(name: str, usage: str, argv: Sequence[str], low: int = 0, high: int = 0) -> list[str]:
    """The positional arguments of `pipeline/<name>.py` (between `low` and `high` of them): `-h`/`--help` prints the
    usage line and exits 0; a wrong count or an option prints it with the error and exits 2 (as argparse does)."""
    line = f"usage: python pipeline/{name}.py {usage}".rstrip()
    args = list(argv)
    if any(a in ("-h", "--help") for a in args):
        print(line)
        raise SystemExit(0)
    bad = [a for a in args if a.startswith("-")]
    if bad or not low <= len(args) <= high:
        want = f"{low}" if low == high else f"{low} to {high}"
        usage_error(name, usage, f"unknown option {bad[0]}" if bad else f"expected {want} argument(s), got {len(args)}")
    return args


def usage_error(name: str, usage: str, why: str) -> None:
    """Print `pipeline/<name>.py`'s usage line and `why`, and exit 2 (a bad value of a positional argument)."""
    print(f"usage: python pipeline/{name}.py {usage}".rstrip() + f"\n{name}: error: {why}", file=sys.stderr)
    raise SystemExit(2)


def run_stage(name: str, main: Callable[..., Any], *args: Any) -> None:
    """Run a stage's `main`; our errors (bad params, bad data, missing inputs) print as `<name>: error: ...` and exit 2.

    Any other exception keeps its traceback (it is a bug); FER_TRACEBACK=1 shows tracebacks for all.
    """
    try:
        main(*args)
    except USER_ERRORS as e:
        if os.environ.get("FER_TRACEBACK"):
            raise
        print(f"{name}: error: {e}", file=sys.stderr)
        print(f"{name}: (set FER_TRACEBACK=1 for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
