"""FACS codebook: expression -> action units (reference implementation's table, or the paper's Fig. 2)."""

from __future__ import annotations

from fer_pipeline.core.labels import LABELS

_REFERENCE: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happiness": (6, 12, 25),
    "sadness": (1, 4, 6, 15, 17),
    "surprise": (1, 2, 5, 26, 27),
    "fear": (1, 2, 4, 5, 20, 25, 26, 27),
    "anger": (4, 5, 7, 10, 17, 23, 24, 25, 26),
    "disgust": (9, 5, 16, 17, 25, 26),
}
# The paper's Fig. 2 lists AU10 (upper lip raiser) for disgust where the reference code has AU5.
_PAPER: dict[str, tuple[int, ...]] = {**_REFERENCE, "disgust": (9, 10, 16, 17, 25, 26)}

CODEBOOKS: dict[str, dict[str, tuple[int, ...]]] = {"reference": _REFERENCE, "paper": _PAPER}

#: Every AU any codebook uses, sorted.
ALL_AUS: tuple[int, ...] = tuple(sorted({au for book in CODEBOOKS.values() for aus in book.values() for au in aus}))


def aus_for(label: int, codebook: str = "reference") -> tuple[int, ...]:
    """AUs of canonical class index `label` under `codebook`."""
    if codebook not in CODEBOOKS:
        raise ValueError(f"unknown codebook {codebook!r}; valid: {', '.join(CODEBOOKS)}")
    return CODEBOOKS[codebook][LABELS[label]]
