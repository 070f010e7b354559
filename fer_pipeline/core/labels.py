"""Canonical label order (the reference code's) and the adapters' label tables: one place."""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "fear",
    "anger",
    "disgust",
    "sadness",
)
NUM_CLASSES: int = len(LABELS)
NEUTRAL: int = 0
#: Classes that have action units, i.e. the ones every AU metric averages over.
AU_CLASSES: tuple[int, ...] = tuple(i for i in range(NUM_CLASSES) if i != NEUTRAL)

#: RAF-DB basic `EmoLabel/list_patition_label.txt` code -> canonical index.
RAFDB_TO_CANONICAL: dict[int, int] = {
    1: LABELS.index("surprise"),
    2: LABELS.index("fear"),
    3: LABELS.index("disgust"),
    4: LABELS.index("happiness"),
    5: LABELS.index("sadness"),
    6: LABELS.index("anger"),
    7: LABELS.index("neutral"),
}

#: AffectNet `expression` code -> canonical index (7 contempt and >= 8 are not mapped).
AFFECTNET_TO_CANONICAL: dict[int, int] = {
    0: LABELS.index("neutral"),
    1: LABELS.index("happiness"),
    2: LABELS.index("sadness"),
    3: LABELS.index("surprise"),
    4: LABELS.index("fear"),
    5: LABELS.index("disgust"),
    6: LABELS.index("anger"),
}

#: Folder-name synonyms (lower case) -> canonical name.
SYNONYMS: dict[str, str] = {
    "neutral": "neutral",
    "neu": "neutral",
    "happy": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "hap": "happiness",
    "surprise": "surprise",
    "surprised": "surprise",
    "sur": "surprise",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "fea": "fear",
    "anger": "anger",
    "angry": "anger",
    "ang": "anger",
    "disgust": "disgust",
    "disgusted": "disgust",
    "dis": "disgust",
    "sad": "sadness",
    "sadness": "sadness",
}


def label_index(name: str) -> int:
    """Canonical index of a class name or synonym; ValueError listing valid names otherwise."""
    key = name.strip().lower()
    if key in SYNONYMS:
        return LABELS.index(SYNONYMS[key])
    synonyms = ", ".join(sorted(SYNONYMS))
    raise ValueError(f"unknown expression class {name!r}; valid: {', '.join(LABELS)} (and synonyms {synonyms})")
