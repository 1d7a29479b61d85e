# Generated from reference/instance_seg.py by `visionbench stub instance_seg`: fill in the bodies, keep the signatures.
"""Instance segmentation with Mask R-CNN: RoIAlign, box coding, anchors, mask pasting, mask IoU and COCO's RLE.

Conventions: images and feature maps are NCHW float tensors; a box is ``(x1, y1, x2, y2)`` ("xyxy") in pixels, x to
the right and y down. Boxes of the data lie on pixel edges (pixel ``(y, x)`` is the unit square ``[x, x + 1] x
[y, y + 1]``, so a box around pixel columns 3..7 has ``x1 = 3``, ``x2 = 8``). A feature map of stride ``s`` holds,
at index ``(i, j)``, the value of the image region around ``((j + 0.5) * s, (i + 0.5) * s)``: ``spatial_scale = 1 /
s`` maps box coordinates onto it, and ``aligned=True`` subtracts the half pixel that puts index ``i`` at coordinate
``i + 0.5`` (``aligned=False`` is the legacy convention of the first Mask R-CNN code, index ``i`` at coordinate
``i``). A set of regions of interest (RoIs) is ``Tensor[K, 5]`` rows ``(batch index, x1, y1, x2, y2)`` or a list
with one ``Tensor[L_i, 4]`` per image. Binary masks are ``bool[H, W]`` (one) or ``bool[K, H, W]`` (several).

The path of the lesson:
- ``roi_align``: a fixed-size feature grid for any box, by bilinear sampling at ``sampling_ratio x sampling_ratio``
  points per bin and averaging; exactly torchvision's, borders and all. It is written as two interpolation
  matrices, one for rows and one for columns: ``pooled = A_y @ features @ A_x^T``, so autograd gives the backward.
  (The lesson's shortcut, ``grid_sample`` at bin centres, is RoIAlign only with one sample per bin and away from
  the borders.)
- ``roi_pool``: the Fast R-CNN predecessor: boxes rounded to the feature grid, a max over each bin.
- ``encode_boxes`` / ``decode_boxes``: Faster R-CNN's box deltas (centre offsets in box widths, log size ratios).
- ``anchor_grid``: the reference boxes an RPN scores and refines, one set per feature-map cell.
- ``paste_masks_in_image``: a fixed-size mask per detection back into the image, inside its box.
- ``mask_iou``, ``rle_encode``, ``rle_decode``: how masks are compared and stored by COCO.
- ``train_mask_rcnn`` / ``predict_mask_rcnn``: the metric task, a tiny Mask R-CNN (backbone, RPN, RoIAlign, box
  and mask heads) on shapes64 scenes, scored by COCO mask AP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from harness.training import BudgetClock, seeded, seeded_generator, split_images, warmup_cosine

__all__ = [
    "roi_align",
    "roi_pool",
    "encode_boxes",
    "decode_boxes",
    "anchor_grid",
    "paste_masks_in_image",
    "mask_iou",
    "rle_encode",
    "rle_decode",
    "train_mask_rcnn",
    "predict_mask_rcnn",
]

BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # Faster R-CNN's (wx, wy, ww, wh)
BOX_SIZE_CLAMP = math.log(1000.0 / 16)  # decoded dw, dh are clamped to at most this: exp() cannot overflow


# --- input checks -----------------------------------------------------------------------------------------------------


# --- RoIAlign and RoIPool ---------------------------------------------------------------------------------------------


def roi_align(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (He et al., 2017) with torchvision's exact semantics, differentiable with respect to ``input``.

    Each RoI, scaled by ``spatial_scale`` (and moved by -0.5 when ``aligned``), is cut into ``output_size`` bins;
    each bin averages the bilinear interpolation of ``input`` at a regular ``grid_h x grid_w`` set of points, where
    ``grid = sampling_ratio`` if it is > 0 and ``ceil(roi_size / output_size)`` otherwise. Legacy (``aligned=False``)
    RoIs are at least 1 x 1; a sample outside ``[-1, H] x [-1, W]`` counts as 0, one between -1 and 0 (or H - 1 and
    H) reads the border value. Bilinear weights factor into rows times columns, so the pooled features are
    ``A_y @ input[b] @ A_x^T / (grid_h * grid_w)`` with one interpolation matrix per axis and RoI.

    Args:
        input (Tensor[N, C, H, W]): floating feature maps.
        boxes (Tensor[K, 5] | list[Tensor[L_i, 4]]): RoIs ``(batch index, x1, y1, x2, y2)``, or per image xyxy boxes.
        output_size (int | tuple[int, int]): bins ``(height, width)``.
        spatial_scale (float): multiplies the box coordinates (1 / the feature map's stride).
        sampling_ratio (int): sample points per bin along each axis; <= 0: adaptive, ``ceil(roi_size / bins)``.
        aligned (bool): shift the scaled box by -0.5 (pixel centres at half-integers); no minimum RoI size.

    Returns:
        Tensor[K, C, output_height, output_width]: pooled features, the dtype of ``input``.

    Raises:
        TypeError, ValueError: malformed input, boxes (a batch index outside ``[0, N)``) or output_size.
    """
    raise NotImplementedError("instance_seg.roi_align: see specs/08_instance_seg.yaml")


def roi_pool(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoIPool (Girshick, 2015) with torchvision's semantics: the maximum of each bin of a box rounded to the grid.

    Corners are scaled and rounded (halves away from zero); the RoI spans ``round(x2) - round(x1) + 1`` cells (at
    least 1); bin ``p`` covers cells ``[floor(p * bin), ceil((p + 1) * bin))`` from the RoI's first, clipped to the
    map. An empty bin gives 0. The gradient goes to the first maximal cell of each bin in row-major order.

    Args:
        input (Tensor[N, C, H, W]): floating feature maps.
        boxes (Tensor[K, 5] | list[Tensor[L_i, 4]]): RoIs ``(batch index, x1, y1, x2, y2)``, or per image xyxy boxes.
        output_size (int | tuple[int, int]): bins ``(height, width)``.
        spatial_scale (float): multiplies the box coordinates.

    Returns:
        Tensor[K, C, output_height, output_width]: pooled features, the dtype of ``input``.

    Raises:
        TypeError, ValueError: malformed input, boxes or output_size.
    """
    raise NotImplementedError("instance_seg.roi_pool: see specs/08_instance_seg.yaml")


# --- box coding and anchors -------------------------------------------------------------------------------------------


def encode_boxes(boxes: Tensor, anchors: Tensor, weights: tuple[float, float, float, float] = BOX_CODER_WEIGHTS) -> Tensor:
    """Faster R-CNN regression targets of ``boxes`` relative to ``anchors`` (torchvision's ``BoxCoder.encode``).

    With centres ``(cx, cy)`` and sizes ``(w, h)`` (``w = x2 - x1``): ``dx = wx * (cx - cx_a) / w_a``,
    ``dy = wy * (cy - cy_a) / h_a``, ``dw = ww * log(w / w_a)``, ``dh = wh * log(h / h_a)``.

    Args:
        boxes (Tensor[N, 4]): xyxy target boxes, positive sizes.
        anchors (Tensor[N, 4]): the xyxy anchor (or proposal) of each, positive sizes, same dtype.
        weights (tuple[float, float, float, float]): ``(wx, wy, ww, wh)``.

    Returns:
        Tensor[N, 4]: ``(dx, dy, dw, dh)``, the dtype of ``boxes``.

    Raises:
        TypeError, ValueError: not floating Tensor[N, 4] of the same length.
    """
    raise NotImplementedError("instance_seg.encode_boxes: see specs/08_instance_seg.yaml")


def decode_boxes(
    deltas: Tensor, anchors: Tensor, weights: tuple[float, float, float, float] = BOX_CODER_WEIGHTS, clamp: float = BOX_SIZE_CLAMP
) -> Tensor:
    """Boxes from Faster R-CNN deltas (torchvision's ``BoxCoder.decode_single``): the inverse of :func:`encode_boxes`.

    ``cx = dx / wx * w_a + cx_a``, ``w = exp(min(dw / ww, clamp)) * w_a`` (``cy``, ``h`` likewise): without the clamp
    an untrained regressor's large ``dw`` overflows ``exp`` to infinity.

    Args:
        deltas (Tensor[N, 4 * k]): ``k`` sets of ``(dx, dy, dw, dh)`` per anchor (e.g. one per class).
        anchors (Tensor[N, 4]): xyxy anchors (or proposals).
        weights (tuple[float, float, float, float]): ``(wx, wy, ww, wh)``.
        clamp (float): the largest ``dw / ww`` and ``dh / wh`` used.

    Returns:
        Tensor[N, 4 * k]: xyxy boxes, the dtype of ``deltas``.

    Raises:
        TypeError, ValueError: deltas not floating Tensor[N, 4 * k], anchors not Tensor[N, 4].
    """
    raise NotImplementedError("instance_seg.decode_boxes: see specs/08_instance_seg.yaml")


def anchor_grid(grid_size: tuple[int, int], stride: int, sizes: tuple[float, ...], aspect_ratios: tuple[float, ...], offset: float = 0.0) -> Tensor:
    """Anchors of every cell of a feature map, torchvision's ``AnchorGenerator`` convention.

    The cell anchors: for aspect ratio ``r`` (height / width) and size ``s``, ``w = s / sqrt(r)``, ``h = s *
    sqrt(r)``, the box ``(-w / 2, -h / 2, w / 2, h / 2)`` with each corner rounded to an integer (halves to even).
    Cell ``(row y, column x)`` holds them moved to ``((x + offset) * stride, (y + offset) * stride)``: torchvision's
    ``offset = 0`` puts them on the cell's top-left corner, ``offset = 0.5`` on its centre.

    Args:
        grid_size (tuple[int, int]): the feature map's ``(height, width)`` in cells.
        stride (int): pixels per cell.
        sizes (tuple[float, ...]): anchor sizes ``s`` in pixels.
        aspect_ratios (tuple[float, ...]): height / width ratios ``r`` > 0.
        offset (float): where in a cell its anchors are centred, in cells.

    Returns:
        Tensor[H * W * A, 4] float32: xyxy anchors, ordered by row, column, aspect ratio, then size
        (``A = len(aspect_ratios) * len(sizes)``).

    Raises:
        ValueError: an empty or non-positive size or ratio list, a negative grid size, or stride < 1.
    """
    raise NotImplementedError("instance_seg.anchor_grid: see specs/08_instance_seg.yaml")


# --- masks ------------------------------------------------------------------------------------------------------------


def paste_masks_in_image(masks: Tensor, boxes: Tensor, image_shape: tuple[int, int], padding: int = 1) -> Tensor:
    """Paste each ``M x M`` mask into a full image inside its box, as torchvision's Mask R-CNN does.

    Each mask is zero-padded by ``padding`` cells on every side and its box scaled about its centre by ``(M + 2 *
    padding) / M`` to match (so the mask's own border is not cut off); the box corners are then truncated to
    integers (towards zero), and the mask resized bilinearly (``align_corners=False``) to ``(y2 - y1 + 1, x2 - x1 +
    1)`` pixels (at least 1 x 1: torchvision's legacy "+ 1" convention) and written at ``(x1, y1)``, cropped to the
    image; everything outside is 0.

    Args:
        masks (Tensor[N, 1, M, M]): floating masks (e.g. probabilities).
        boxes (Tensor[N, 4]): xyxy boxes in image pixels.
        image_shape (tuple[int, int]): ``(H, W)``.
        padding (int): cells of zero padding around each mask.

    Returns:
        Tensor[N, 1, H, W]: the pasted masks, the dtype of ``masks``.

    Raises:
        TypeError, ValueError: masks not floating Tensor[N, 1, M, M], boxes not Tensor[N, 4], or a bad image shape.
    """
    raise NotImplementedError("instance_seg.paste_masks_in_image: see specs/08_instance_seg.yaml")


def mask_iou(masks1: Tensor, masks2: Tensor) -> Tensor:
    """Pairwise intersection over union of two sets of binary masks.

    Args:
        masks1 (Tensor[N, H, W]): bool (or 0/1 uint8) masks.
        masks2 (Tensor[M, H, W]): the same, same ``H, W``.

    Returns:
        Tensor[N, M] float32: ``|a & b| / |a | b|``; 0 where both masks are empty (pycocotools' convention).

    Raises:
        TypeError, ValueError: not bool Tensor[*, H, W] of the same image size.
    """
    raise NotImplementedError("instance_seg.mask_iou: see specs/08_instance_seg.yaml")


def rle_encode(mask: Tensor) -> dict[str, list[int]]:
    """COCO's uncompressed run-length encoding of one binary mask.

    The pixels are read in column-major (Fortran) order, down the first column, then the second, ...; ``counts``
    alternates run lengths of 0s and 1s and always starts with the 0s (a leading 0 when the first pixel is set).

    Args:
        mask (Tensor[H, W]): bool (or 0/1 uint8).

    Returns:
        dict: ``{"size": [H, W], "counts": [int, ...]}`` (the counts sum to ``H * W``).

    Raises:
        TypeError, ValueError: not a bool Tensor[H, W].
    """
    raise NotImplementedError("instance_seg.rle_encode: see specs/08_instance_seg.yaml")


def rle_decode(rle: dict[str, list[int]]) -> Tensor:
    """The binary mask of an uncompressed COCO RLE (the inverse of :func:`rle_encode`).

    Args:
        rle (dict): ``{"size": [H, W], "counts": [int, ...]}``, runs of 0s and 1s alternating, starting with 0s, in
            column-major order.

    Returns:
        Tensor[H, W] bool.

    Raises:
        TypeError, ValueError: not such a dict, a negative run, or counts that do not sum to ``H * W``.
    """
    raise NotImplementedError("instance_seg.rle_decode: see specs/08_instance_seg.yaml")


# --- the tiny Mask R-CNN ----------------------------------------------------------------------------------------------


def train_mask_rcnn(train: dict, *, seed: int, budget_s: float) -> nn.Module:
    """Train a tiny Mask R-CNN on shapes scenes: a fixed schedule of AdamW steps on random, randomly flipped batches.

    Args:
        train (dict): ``images`` float32[N, 3, H, W] in [0, 1] (H, W multiples of 8); ``boxes`` float32[M, 4] xyxy
            pixels, ``classes`` int64[M] and ``object_image`` int64[M] (objects stored image by image, in drawing
            order); ``instances`` uint8[N, H, W] (``k + 1`` where the image's ``k``-th object is on top).
        seed (int): the run's seed (initialisation, batches, flips, sampling); the global RNG is left as it was.
        budget_s (float): CPU seconds allowed; the schedule ends well inside it (training stops early only once the
            budget clock expires, ``harness.training.EARLY_STOP_FRACTION`` of it spent).

    Returns:
        nn.Module: the trained model, in eval mode.

    Raises:
        TypeError, ValueError: a malformed split, or ``budget_s`` <= 0.
    """
    raise NotImplementedError("instance_seg.train_mask_rcnn: see specs/08_instance_seg.yaml")


def predict_mask_rcnn(model: nn.Module, inputs: dict) -> list[dict[str, Tensor]]:
    """Detections with full-image masks for every image.

    Args:
        model (nn.Module): what ``train_mask_rcnn`` returned.
        inputs (dict): ``{"images": Tensor[N, 3, H, W] float32 in [0, 1]}``.

    Returns:
        list[dict[str, Tensor]]: per image ``boxes`` float32[K, 4] xyxy pixels, ``scores`` float32[K], ``labels``
        int64[K] classes and ``masks`` bool[K, H, W], at most 100, in decreasing order of score.

    Raises:
        TypeError, ValueError: malformed ``inputs``.
    """
    raise NotImplementedError("instance_seg.predict_mask_rcnn: see specs/08_instance_seg.yaml")
