"""Training seeds: `train.seed` trains each run's model (models/<run>/model.pt, what every reader loads) and
`report.extra_seeds` lists more seeds, each trained and evaluated beside it (stages `train-seeds`,
`train-baseline-seeds`), so metrics/<run>.json holds the mean over all seeds and details.json their spread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def extra_seeds(params: Mapping[str, Any]) -> list[int]:
    """`report.extra_seeds` as ints (a YAML list or a `-S` string "[1,2]"); an error names a bad or repeated seed."""
    value = (params.get("report") or {}).get("extra_seeds") or []
    if isinstance(value, str):
        value = [v for v in value.strip().strip("[]").split(",") if v.strip()]
    if isinstance(value, int):
        value = [value]
    seeds = []
    for v in value:
        try:
            seeds.append(int(str(v).strip()))
        except ValueError:
            raise ValueError(f"params.yaml report.extra_seeds: {v!r} is not an integer seed; write e.g. [1, 2]") from None
    main = int((params.get("train") or {}).get("seed", 0))
    if main in seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"params.yaml report.extra_seeds {seeds} repeats a seed (train.seed is {main}, trained anyway); "
                         f"list each extra seed once")
    return seeds


def all_seeds(params: Mapping[str, Any]) -> list[int]:
    """`train.seed` first, then the extra seeds."""
    return [int((params.get("train") or {}).get("seed", 0)), *extra_seeds(params)]
