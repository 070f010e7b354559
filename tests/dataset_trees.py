"""Small RAF-DB / AffectNet / folder trees in the datasets' real layouts and label codes: synthetic faces plus the astronaut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fer_pipeline.data.synthetic import SyntheticConfig, make_sample

#: The astronaut's face in `skimage.data.astronaut()`, measured by hand on a 10x zoom of the photo (x, y in pixels, to
#: within 2 px), independent of any detector: pupils (image-left first), nose tip, mouth centre, chin.
ASTRONAUT_POINTS = {"eye_left": (202, 100), "eye_right": (246, 101), "nose": (222, 127), "mouth": (223, 143), "chin": (220, 178)}
#: A box drawn by hand around that face (left, top, right, bottom): the face's edges at eye height, brows to chin.
ASTRONAUT_FACE = (180, 88, 270, 178)


def astronaut() -> np.ndarray:
    """The scikit-image astronaut (512x512 RGB, one face)."""
    from skimage.data import astronaut as load

    return load()


def astronaut_crop(margin: float = 0.1) -> np.ndarray:
    """The astronaut's face box grown by `margin` of its side on each edge (an aligned-crop stand-in)."""
    left, top, right, bottom = ASTRONAUT_FACE
    pad = int(round((right - left) * margin))
    return astronaut()[top - pad : bottom + pad + 1, left - pad : right + pad + 1]


def face(index: int, label: int, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic face (RGB uint8) and its ground-truth (68,2) landmarks."""
    s = make_sample(7, index, label, "train", SyntheticConfig(size=size))
    return s.image, s.landmarks


def save(path: Path, image: np.ndarray) -> None:
    """Write an RGB image (format from the suffix), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95} if path.suffix == ".jpg" else {}
    Image.fromarray(image).save(path, **options)


def make_rafdb(root: Path) -> dict[str, int]:
    """RAF-DB basic: label file + `Image/aligned/*_aligned.jpg` (100x100); returns sample_id → RAF-DB code of the kept rows."""
    lines, kept = [], {}
    save(root / "Image/aligned/train_00001_aligned.jpg", np.asarray(Image.fromarray(astronaut_crop()).resize((100, 100))))
    lines.append("train_00001.jpg 4")  # 4 = happiness: the astronaut smiles
    kept["train_00001"] = 4
    for i in range(2, 16):
        split = "train" if i < 12 else "test"
        name = f"{split}_{i:05d}" if split == "train" else f"test_{i:04d}"
        code = (i % 7) + 1
        save(root / f"Image/aligned/{name}_aligned.jpg", face(i, 0, 100)[0])
        lines.append(f"{name}.jpg {code}")
        kept[name] = code
    lines += ["train_00099.jpg 3", "train_00100.jpg", "test_0200.jpg 9"]  # missing image, malformed line, bad code
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel/list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return kept


def _points_text(points: np.ndarray) -> str:
    return ";".join(f"{v:.2f}" for v in points.reshape(-1))


def make_affectnet(root: Path) -> dict[str, int]:
    """AffectNet: file lists + `Manually_Annotated_Images/<dir>/<file>.jpg`, face boxes, 68 landmarks; sample_id → code kept."""
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
    rows: dict[str, list[str]] = {"training.csv": [header], "validation.csv": [header]}
    kept = {}
    for i in range(12):
        code = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 1, 2][i]  # 7 contempt, 8 none, 10 no face: left out
        rel = f"{100 + i % 3}/img{i:03d}.jpg"
        img, pts = face(i, 0)
        canvas = np.full((160, 176, 3), 90, np.uint8)
        canvas[30:142, 20:132] = img
        save(root / "Manually_Annotated_Images" / rel, canvas)
        lst = "validation.csv" if i in (5, 6, 11) else "training.csv"
        rows[lst].append(f'{rel},20,30,112,112,"{_points_text(pts + (20, 30))}",{code},0.1,0.2')
        if code < 7:
            kept[f"{100 + i % 3}_img{i:03d}"] = code
    save(root / "Manually_Annotated_Images/200/astro.jpg", astronaut())
    left, top, right, bottom = ASTRONAUT_FACE
    rows["training.csv"].append(
        f'200/astro.jpg,{left},{top},{right - left + 1},{bottom - top + 1},"1;2;3",1,0.5,0.5'
    )  # bad landmarks
    kept["200_astro"] = 1
    rows["training.csv"].append('300/gone.jpg,0,0,10,10,"",1,0,0')  # missing image
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    for name, lines in rows.items():
        (lists / name).write_text("\n".join(lines) + "\n")
    return kept


def make_folder(root: Path) -> dict[str, str]:
    """FER2013-style `<split>/<class>/` with synonyms, a contempt folder and a stray text file; path → class folder kept."""
    kept = {}
    classes = {"train": ["happy", "Angry", "surprised", "neutral"], "test": ["happy", "sad"]}
    k = 0
    for split, names in classes.items():
        for name in names:
            for j in range(2):
                rel = f"{split}/{name}/im{j}.png"
                save(root / rel, face(k, 0)[0])
                kept[rel] = name
                k += 1
    save(root / "train/happy/astronaut.jpg", astronaut())
    kept["train/happy/astronaut.jpg"] = "happy"
    save(root / "train/contempt/c0.png", face(99, 0)[0])
    (root / "train/happy/notes.txt").write_text("not an image\n")
    return kept


def _tiny(seed: int) -> np.ndarray:
    """An 8x8 grey image (prepare only lists files: the split tests need names, not faces)."""
    return np.full((8, 8, 3), 40 + seed % 200, np.uint8)


def make_ckplus(
    root: Path, subjects: int = 30, sequences: int = 2, frames: int = 3, seed: int = 0, first: int = 5
) -> dict[str, str]:
    """CK+-style `<class>/S<subject>_<sequence>_<frame>.png`: each subject shows `sequences` expressions, the last
    `frames` frames of each (the peak frames CK+ users keep); subjects numbered from `first`; path -> subject."""
    rng = np.random.default_rng(seed)
    folders = ["neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted"]
    kept = {}
    for s in range(subjects):
        for q, k in enumerate(rng.choice(len(folders), size=sequences, replace=False)):
            for f in range(frames):
                rel = f"{folders[k]}/S{s + first:03d}_{q + 1:03d}_{f + 10:08d}.png"
                save(root / rel, _tiny(s))
                kept[rel] = f"S{s + first:03d}"
    return kept


def make_jaffe(root: Path, images: int = 3) -> dict[str, str]:
    """JAFFE-style `<class>/<SS>.<EE><n>.<id>.tiff`: 10 subjects x 7 expressions x `images`; path -> subject."""
    people = ["KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM"]
    codes = {"neutral": "NE", "happy": "HA", "sad": "SA", "angry": "AN", "surprised": "SU", "fearful": "FE", "disgusted": "DI"}
    kept, n = {}, 0
    for p in people:
        for folder, code in codes.items():
            for i in range(images):
                n += 1
                rel = f"{folder}/{p}.{code}{i + 1}.{n}.tiff"
                save(root / rel, _tiny(n))
                kept[rel] = p
    return kept
