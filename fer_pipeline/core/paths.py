"""Where each artifact lives, relative to the repository root: one place for every path."""

from __future__ import annotations

from pathlib import Path


def prepared_dir(dataset: str) -> Path:
    """Folder of the prepare stage's outputs (manifest, generated images)."""
    return Path("data/prepared") / dataset


#: Files the prepare stage writes beside the manifest (in `prepared_dir`):
#: the generator's landmark truth (import CSV format; read by `landmarks.backend: synthetic`),
GT_LANDMARKS = "landmarks_gt.csv"
#: the generator's per-image AU truth (`sample_id, AU1, …` in [0, 1]; read by `aus.source: synthetic` and evaluate),
GT_AUS = "aus_gt.csv"
#: landmarks shipped by the dataset (AffectNet), in the import CSV format (`landmarks.backend: dataset`),
DATASET_LANDMARKS = "landmarks_dataset.csv"
#: source rows an adapter left out of the manifest, and why.
EXCLUDED = "excluded.csv"


#: Stage `pretrain`'s folder: the pretrained backbone (`train.pretrained: models/pretrain/backbone.pt`) and its summary.
PRETRAIN_DIR = Path("models/pretrain")
PRETRAIN_WEIGHTS = PRETRAIN_DIR / "backbone.pt"
PRETRAIN_SUMMARY = PRETRAIN_DIR / "summary.json"


def manifest_path(dataset: str) -> Path:
    """`sample_id, path, label, split` CSV written by prepare."""
    return prepared_dir(dataset) / "manifest.csv"


def landmark_store(dataset: str) -> Path:
    """The shareable 68-landmark HDF5 store."""
    return Path("data/landmarks") / f"{dataset}.h5"


#: Landmark files to import (`fer landmarks import` writes `<dataset>.csv` here); a DVC dependency of the landmarks stage.
IMPORT_DIR = Path("data/import")


def landmark_import(dataset: str) -> Path:
    """The import CSV `fer landmarks import` writes and `landmarks.backend: import` reads when `landmarks.file` is empty."""
    return IMPORT_DIR / f"{dataset}.csv"


def landmark_qa_figure(dataset: str) -> Path:
    """The landmark QA figure (`fer landmarks qa`): random samples with their points, and the count per status."""
    return Path("figures/landmarks") / f"{dataset}.png"


def aligned_store(dataset: str) -> Path:
    """The aligned-face HDF5 store (stage `align`; attributes only when `align.mode` is none)."""
    return Path("data/aligned") / f"{dataset}.h5"


def align_qa_figure(dataset: str) -> Path:
    """The alignment QA figure (`fer align qa`): random framed faces with their points on the template."""
    return Path("figures/align") / f"{dataset}.png"


def au_store(dataset: str) -> Path:
    """The per-image AU activation HDF5 store (stage `aus`)."""
    return Path("data/aus") / f"{dataset}.h5"


#: AU detector CSVs to import (`fer aus import` writes `<dataset>.csv` here); a DVC dependency of the aus stage only.
AU_IMPORT_DIR = Path("data/aus_import")


def au_import(dataset: str) -> Path:
    """The AU CSV `fer aus import` writes and `aus.source: import` reads when `aus.file` is empty."""
    return AU_IMPORT_DIR / f"{dataset}.csv"


def aumap_store(dataset: str) -> Path:
    """The per-image AU heatmap HDF5 store."""
    return Path("data/aumaps") / f"{dataset}.h5"


def model_path(run: str) -> Path:
    """Trained weights + config of one run."""
    return Path("models") / run / "model.pt"


def seed_run(run: str, seed: int) -> str:
    """Run id of `run` trained with an extra seed (`report.extra_seeds`): its DVCLive and checkpoint folders."""
    return f"{run}-seed{seed}"


def seed_model_path(run: str, seed: int) -> Path:
    """Weights of `run` trained with an extra seed: inside the run's model folder, which its evaluation depends on."""
    return Path("models") / run / f"seed{seed}" / "model.pt"


def live_dir(run: str) -> Path:
    """DVCLive folder of one run."""
    return Path("dvclive") / run


def checkpoint_dir(run: str) -> Path:
    """Per-epoch checkpoints of one run: not a DVC out (DVC would delete it before a resumed run, and a clone that
    pulled the models would retrain for lack of it); `train.resume` checks its fingerprint."""
    return Path("checkpoints") / run


def metrics_path(run: str) -> Path:
    """Headline metrics JSON of one run (the DVC metrics file a reviewer diffs)."""
    return Path("metrics") / f"{run}.json"


#: Validation metrics (the split that chooses λ and layers, never the test split) under the metrics folder.
VAL_DIR = "val"


def val_metrics_path(run: str) -> Path:
    """Headline metrics of one run on the validation split (`metrics/val/<run>.json`): what ablations choose on."""
    return Path("metrics") / VAL_DIR / f"{run}.json"


def plots_dir(run: str) -> Path:
    """DVC plot CSVs of one run."""
    return Path("plots") / run


#: Every metric of a run (per class, layer, AU; not a DVC metric) in its plots folder: what `report` reads.
DETAILS_FILE = "details.json"


def details_path(run: str) -> Path:
    """Every metric of one run (`DETAILS_FILE` in its plots folder)."""
    return plots_dir(run) / DETAILS_FILE


#: Per test image scores of a run (class, prediction, CAM-COS, ATT-COS) in its plots folder: the bootstrap bands' input.
SCORES_FILE = "scores.csv"


def scores_path(run: str) -> Path:
    """Per test image scores of one run (`SCORES_FILE` in its plots folder)."""
    return plots_dir(run) / SCORES_FILE


def figures_dir(run: str) -> Path:
    """PNG figures of one run."""
    return Path("figures") / run


#: Folder (under each artifact folder) of the extra test datasets of `crossdata` (cross-dataset evaluation).
CROSS_DIR = "x"


def cross_dataset(name: str) -> str:
    """Storage key of the extra test dataset `name`: its manifest, landmark and AU-map stores sit under `x/<name>` in the
    folders of the main dataset's (`prepared_dir(cross_dataset(name))` = data/prepared/x/<name>), never beside them."""
    return f"{CROSS_DIR}/{name}"


def cross_run(run: str, name: str) -> str:
    """Run id of run `run` evaluated on the extra test dataset `name` (metrics/x/<name>/<run>.json, plots/x/<name>/<run>)."""
    return f"{CROSS_DIR}/{name}/{run}"


REPORT_DIR = Path("reports")
#: Noise bands of the report (each run's, each with-vs-without change's, the seed spread), machine-readable.
BANDS_REPORT = REPORT_DIR / "bands.json"
PAPER_TABLES = Path("data/paper/paper_tables.csv")
PAPER_LAYER_TABLE = Path("data/paper/paper_table3_layers.csv")


def resolve_inside(root: Path, relative: str | Path) -> Path:
    """`root / relative`, refusing a path that escapes `root` (e.g. `../../etc/passwd`)."""
    root_r = Path(root).resolve()
    full = (root_r / relative).resolve()
    if full != root_r and root_r not in full.parents:
        raise ValueError(f"path {str(relative)!r} escapes its data root {root_r}; fix the manifest/CSV row to a path inside it")
    return full
