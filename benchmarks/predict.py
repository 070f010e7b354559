"""`fer predict` throughput: images/s end to end (read, detect, 68 points, frame, infer, write the CSV) on pre-aligned
crops without and with HOG detection, and on large photos (HOG on a copy shrunk to `detect_max_side` 800 px, and at
full size), at 1 and 2 framing jobs; plus inference alone.

    PYTHONPATH=. python benchmarks/predict.py [--repeats 3] [--crops 128] [--photos 8]

Variants run interleaved in one process (A, B, C, ... repeated) so machine load hits them alike; each cell is the
median of the repeats. The model is an untrained resnet10t CAM at 64 px (the demo's architecture; weights do not change
the cost). Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.common import interleaved, machine, synthetic_dataset
from fer_pipeline.explain import aumap_settings
from fer_pipeline.landmarks.dlib68 import Dlib68Config
from fer_pipeline.models import create_model, load_model
from fer_pipeline.models.io import save_model
from fer_pipeline.predict import FrameConfig, predict
from fer_pipeline.predict.frame import frame_rows
from fer_pipeline.predict.inputs import read_inputs
from fer_pipeline.predict.score import score_batch


def photos(folder: Path, n: int, side: tuple[int, int]) -> None:
    """n large photos: skimage's astronaut (512 px) upscaled 2x into a grey canvas of `side`, at varying offsets."""
    from skimage.data import astronaut

    folder.mkdir(parents=True, exist_ok=True)
    face = cv2.resize(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    for i in range(n):
        canvas = np.full((side[1], side[0], 3), 110, np.uint8)
        x, y = int(rng.integers(0, side[0] - 1024)), int(rng.integers(0, side[1] - 1024))
        canvas[y : y + 1024, x : x + 1024] = face
        cv2.imwrite(str(folder / f"p{i:03d}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--crops", type=int, default=128)
    ap.add_argument("--photos", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic_dataset(root / "crops", args.crops, 112).to_csv(root / "crops" / "manifest.csv", index=False)
        photos(root / "photos", args.photos, (2000, 1500))
        torch.manual_seed(0)
        model_path = root / "model.pt"
        save_model(model_path, create_model("cam", backbone="resnet10t", output_stride=8, input_size=64), {"input_size": 64})
        none, hog = FrameConfig(Dlib68Config(detector="none")), FrameConfig(Dlib68Config(detector="hog"))
        hog_full = FrameConfig(Dlib68Config(detector="hog", detect_max_side=0))  # detection on the full-size photo
        crops, big = root / "crops" / "manifest.csv", root / "photos"

        def run(src: Path, cfg: FrameConfig, jobs: int) -> object:
            return predict(src, model_path, root / "p.csv", frame_cfg=cfg, device="cpu", n_jobs=jobs, progress=False)

        model, _ = load_model(model_path, "cpu")
        framed = frame_rows(read_inputs(crops), FrameConfig(Dlib68Config(detector="none"), input_size=64))
        faces, pts = np.stack([f.face for f in framed]), np.stack([f.points for f in framed])

        settings = aumap_settings(root / "params.yaml")  # no params file there: the renderer's defaults

        def infer_only() -> object:
            return [
                score_batch(model, faces[i : i + 64], pts[i : i + 64], settings, torch.device("cpu"))
                for i in range(0, len(faces), 64)
            ]

        variants = {
            "crops 112 px, detector none, 1 job": lambda: run(crops, none, 1),
            "crops 112 px, hog, 1 job": lambda: run(crops, hog, 1),
            "crops 112 px, hog, 2 jobs": lambda: run(crops, hog, 2),
            "photos 2000x1500, hog, 1 job": lambda: run(big, hog, 1),
            "photos 2000x1500, hog, 2 jobs": lambda: run(big, hog, 2),
            "photos 2000x1500, hog at full size, 1 job": lambda: run(big, hog_full, 1),
            "inference only (64 px, batch 64)": infer_only,
        }
        counts = {name: args.photos if "photos" in name else args.crops for name in variants}
        run(crops, none, 2)  # warm the loky pool and the model files
        times = interleaved(variants, args.repeats)
    print(f"machine: {machine()}; torch threads 2; repeats {args.repeats}\n")
    print("| variant | images | median s | images/s | vs crops, detector none |")
    print("|---|---|---|---|---|")
    base = args.crops / statistics.median(times["crops 112 px, detector none, 1 job"])
    for name, t in times.items():
        rate = counts[name] / statistics.median(t)
        print(f"| {name} | {counts[name]} | {statistics.median(t):.2f} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
