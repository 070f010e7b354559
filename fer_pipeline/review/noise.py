"""Training noise of one-seed runs: a committed measurement of how much each run's headline metrics move with the
training seed alone (`noise/seed-noise.json`), and where it came from.

A run trained with one seed has no spread of its own, and the bootstrap over the test images says nothing about the
training. `fer noise REV` reads a revision whose runs were trained over several seeds (the seeds preset,
`params-seeds.yaml`) and writes, per run and headline metric, the standard deviation over those seeds, with the
revision and the params it was measured at. `fer review` and the report widen the band of a one-seed change by it,
and say so; where it is missing they give no verdict ("1 seed, training noise unknown").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from fer_pipeline.core.presets import flatten
from fer_pipeline.evaluate.bootstrap import BANDED, t975

#: Where the measurement is committed (a DVC metrics file, read by `fer review` and the report).
NOISE_FILE = PurePosixPath("noise/seed-noise.json")
#: params.yaml sections that can change a trained model (what the measurement is valid for).
TRAINING_SECTIONS = ("data", "synthetic", "landmarks", "align", "aus", "aumaps", "pretrain", "train", "methods")
#: Keys of those sections that do not change what a seed does to the metrics (the seed itself, where it runs).
IGNORED = ("train.seed", "train.resume", "train.num_workers", "train.cache_images", "train.device", "landmarks.n_jobs",
           "landmarks.chunk_size", "landmarks.backend_joblib", "align.n_jobs", "align.chunk_size", "align.backend_joblib",
           "aumaps.n_jobs", "aumaps.chunk_size", "aumaps.backend_joblib")
#: The fewest seeds a measurement may come from.
MIN_SEEDS = 3


def training_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened params that shape a trained model (`TRAINING_SECTIONS` less `IGNORED`), values as JSON would hold them."""
    flat = flatten({k: params[k] for k in TRAINING_SECTIONS if k in params})
    return {k: json.loads(json.dumps(v, default=str)) for k, v in sorted(flat.items()) if k not in IGNORED}


@dataclass(frozen=True)
class SeedNoise:
    """Per run and banded metric, the standard deviation over `seeds` training seeds, measured at `rev` with `params`."""

    rev: str
    seeds: tuple[int, ...]
    sd: dict[str, dict[str, float]]
    params: dict[str, Any] = field(default_factory=dict)
    source: str = str(NOISE_FILE)

    @property
    def multiplier(self) -> float:
        """t(0.975, seeds - 1): the sd is an estimate from that many seeds."""
        return t975(len(self.seeds) - 1)

    def half(self, run: str, key: str) -> float | None:
        """95 % half-width of one seed's value of `key` around the run's seed mean (None: not measured)."""
        sd = (self.sd.get(run) or {}).get(key)
        return None if sd is None else self.multiplier * float(sd)

    def differs(self, params: Mapping[str, Any]) -> list[str]:
        """Keys whose value in `params` (a params.yaml) is not the one the noise was measured at: `key (was → now)`.

        Of `methods`, only the entries of the measured runs' methods count: another method's options do not change
        what a seed does to these runs."""
        methods = {run.rsplit("-", 1)[0] for run in self.sd}

        def shapes(key: str) -> bool:
            section, _, rest = key.partition(".")
            return section != "methods" or rest.split(".", 1)[0] in methods

        now = training_params(params)
        keys = sorted(k for k in set(now) | set(self.params) if shapes(k))
        return [f"{k} ({self.params.get(k, '–')} → {now.get(k, '–')})" for k in keys if now.get(k) != self.params.get(k)]

    def describe(self) -> str:
        """One line: where the noise comes from."""
        return f"{self.source}: sd over {len(self.seeds)} training seeds {list(self.seeds)} at {self.rev[:7]}"

    def to_json(self) -> dict[str, Any]:
        return {"rev": self.rev, "seeds": list(self.seeds), "params": self.params,
                "sd": {run: {k: round(v, 6) for k, v in keys.items()} for run, keys in sorted(self.sd.items())}}


def from_json(raw: bytes | str, source: str = str(NOISE_FILE)) -> SeedNoise:
    """Parse a noise file; an error names the file and what to do."""
    try:
        data = json.loads(raw)
        return SeedNoise(str(data["rev"]), tuple(int(s) for s in data["seeds"]),
                         {run: {k: float(v) for k, v in keys.items() if v is not None} for run, keys in data["sd"].items()},
                         dict(data.get("params") or {}), source)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{source} is not a seed-noise file ({type(e).__name__}: {e}); regenerate it with "
                         f"`fer noise REV`") from None


def measure(seeds_by_run: Mapping[str, Mapping[str, Any]], rev: str, params: Mapping[str, Any]) -> SeedNoise:
    """A SeedNoise from each run's seed spread (details.json `seeds`, as the evaluate stage writes it over
    `report.extra_seeds`). Every run must have the same seeds, at least `MIN_SEEDS`."""
    if not seeds_by_run:
        raise ValueError(f"revision {rev[:7]} has no runs with a seed spread; train it over >= {MIN_SEEDS} seeds first: "
                         f"dvc exp run $(python -m fer_pipeline.core.presets params-seeds.yaml)")
    found = {run: tuple(spread.get("seeds") or ()) for run, spread in seeds_by_run.items()}
    few = {run: len(s) for run, s in found.items() if len(s) < MIN_SEEDS}
    if few:
        raise ValueError(f"revision {rev[:7]}: runs {few} were trained over fewer than {MIN_SEEDS} seeds; set "
                         f"report.extra_seeds to at least {MIN_SEEDS - 1} seeds (params-seeds.yaml) and rerun")
    if len(set(found.values())) > 1:
        raise ValueError(f"revision {rev[:7]}: the runs were trained over different seeds {found}; rerun them together")
    sd = {run: {k: float(spread[k]["sd"]) for k in BANDED if (spread.get(k) or {}).get("sd") is not None}
          for run, spread in seeds_by_run.items()}
    return SeedNoise(rev, next(iter(found.values())), sd, training_params(params))


def read_noise(read: Any, where: str = "") -> SeedNoise | None:
    """The noise file as `read(path) -> bytes | None` sees it at revision `where` ("": the report's own checkout;
    None when it has none)."""
    raw = read(str(NOISE_FILE))
    return None if raw is None else from_json(raw, f"{where}:{NOISE_FILE}" if where else str(NOISE_FILE))


def read_params(read: Any) -> dict[str, Any]:
    """params.yaml at one revision ({} when it has none)."""
    raw = read("params.yaml")
    return (yaml.safe_load(raw) or {}) if raw else {}


def write_noise(noise: SeedNoise, path: Path) -> None:
    """Write the noise file (sorted keys, fixed digits: the same measurement gives the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(noise.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def noise_header(noise: SeedNoise | None, params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Lines that say where the training noise of one-seed runs came from, and at which revision's params it was not
    measured (`params`: revision name -> its params.yaml)."""
    if noise is None:
        return [f"training noise: runs over several seeds bring their own; no {NOISE_FILE} for one-seed runs (their "
                f"changes get no verdict: `fer noise` measures it)"]
    lines = [f"training noise of one-seed runs: {noise.describe()}"]
    for rev, p in params.items():
        differ = noise.differs(p) if p else []
        if differ:
            shown = ", ".join(differ[:6]) + (f", and {len(differ) - 6} more" if len(differ) > 6 else "")
            lines.append(f"  measured at other params than {rev}: {shown}")
    return lines
