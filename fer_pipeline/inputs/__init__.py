"""What a model sees: how a framed face (and its AU map) becomes a tensor, shared by training, evaluation, `fer explain`
and `fer predict`. Framing is `fer_pipeline.align.model_input` (the aligned store's bytes, resized to the input size);
normalisation and the float planes are in `tensor`; the dataset and batching of manifest rows in `dataset`. Training
adds only its augmentation on top (`fer_pipeline.train.augment`, passed to `FERDataset` as `augment`)."""

from fer_pipeline.align.warp import model_input
from fer_pipeline.inputs.tensor import IMAGENET_MEAN, IMAGENET_STD, faces_to_array, normalizer, to_tensor_planes, with_map

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "faces_to_array", "model_input", "normalizer", "to_tensor_planes", "with_map"]
