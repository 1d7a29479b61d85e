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


def _check_features(x: Tensor, name: str) -> None:
    """Raise TypeError/ValueError unless ``x`` is a floating ``Tensor[N, C, H, W]`` with ``H, W >= 1``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected input Tensor[N, C, H, W], got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point input Tensor[N, C, H, W], got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"{name}: expected input Tensor[N, C, H, W] with H, W >= 1, got shape {tuple(x.shape)}")


def _check_boxes(boxes: Tensor, name: str, columns: int = 4) -> None:
    """Raise TypeError/ValueError unless ``boxes`` is a floating ``Tensor[N, columns]``."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{name}: expected a Tensor[N, {columns}], got {type(boxes).__name__}")
    if not boxes.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point Tensor[N, {columns}], got dtype {boxes.dtype}")
    if boxes.dim() != 2 or boxes.shape[1] != columns:
        raise ValueError(f"{name}: expected a tensor of shape [N, {columns}], got {tuple(boxes.shape)}")


def _as_rois(boxes: Tensor | list[Tensor], batch: int, dtype: torch.dtype, name: str) -> Tensor:
    """RoIs ``Tensor[K, 5]`` (batch index, x1, y1, x2, y2) in ``dtype`` from either accepted form of ``boxes``."""
    if isinstance(boxes, (list, tuple)):
        for index, per_image in enumerate(boxes):
            _check_boxes(per_image, f"{name} boxes[{index}]")
        if len(boxes) > batch:
            raise ValueError(f"{name}: {len(boxes)} box lists for a batch of {batch} images")
        indices = [torch.full((len(b), 1), float(i), dtype=dtype) for i, b in enumerate(boxes)]
        rois = torch.cat([torch.cat([i, b.to(dtype)], dim=1) for i, b in zip(indices, boxes)]) if boxes else None
        return rois if rois is not None else torch.zeros(0, 5, dtype=dtype)
    _check_boxes(boxes, f"{name} boxes", columns=5)
    batch_index = boxes[:, 0]
    if len(boxes) and (bool((batch_index < 0).any()) or bool((batch_index >= batch).any())):
        raise ValueError(f"{name}: batch indices (column 0 of boxes) must lie in [0, {batch}), got [{batch_index.min():g}, {batch_index.max():g}]")
    return boxes.to(dtype)


def _pair(size: int | tuple[int, int], name: str) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if not (isinstance(height, int) and isinstance(width, int)) or height < 1 or width < 1:
        raise ValueError(f"{name}: output_size must be an int or (height, width) of ints >= 1, got {size!r}")
    return height, width


def _check_mask(mask: Tensor, name: str, dims: int) -> None:
    """Raise TypeError/ValueError unless ``mask`` is a bool (or 0/1 uint8) tensor with ``dims`` dimensions."""
    shape = "[H, W]" if dims == 2 else "[K, H, W]"
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name}: expected a bool Tensor{shape}, got {type(mask).__name__}")
    if mask.dtype not in (torch.bool, torch.uint8):
        raise TypeError(f"{name}: expected a bool (or 0/1 uint8) Tensor{shape}, got dtype {mask.dtype}")
    if mask.dim() != dims:
        raise ValueError(f"{name}: expected a mask Tensor{shape}, got shape {tuple(mask.shape)}")
    if mask.dtype == torch.uint8 and mask.numel() and int(mask.max()) > 1:
        raise ValueError(f"{name}: a uint8 mask must hold only 0 and 1, got values up to {int(mask.max())}")


# --- RoIAlign and RoIPool ---------------------------------------------------------------------------------------------


def _interpolation_matrix(start: Tensor, length: Tensor, bins: int, size: int, sampling_ratio: int) -> tuple[Tensor, Tensor]:
    """Bilinear sampling weights along one axis of every RoI, summed over each bin's samples.

    Sample ``i`` of bin ``p`` lies at ``start + p * bin + (i + 0.5) * bin / grid`` (``bin = length / bins``; ``grid``
    samples per bin, ``sampling_ratio`` or ``ceil(length / bins)``). A sample beyond ``[-1, size]`` contributes
    nothing; one in ``[-1, 0]`` reads index 0, one in ``[size - 1, size]`` index ``size - 1``: torchvision's kernel.

    Returns:
        (Tensor[K, bins, size], Tensor[K]): the weights, and the samples per bin along this axis (``grid``).
    """
    bin_size = length / bins  # (K,)
    grid = torch.full_like(length, float(sampling_ratio)) if sampling_ratio > 0 else torch.ceil(length / bins)
    samples = int(grid.max().clamp(min=0)) if len(grid) else 0
    index = torch.arange(samples, dtype=length.dtype)  # (S,)
    offsets = torch.arange(bins, dtype=length.dtype)[:, None] * bin_size[:, None, None]  # (K, bins, 1)
    position = start[:, None, None] + offsets + (index + 0.5) * bin_size[:, None, None] / grid[:, None, None]  # (K, bins, S)
    counts = (index < grid[:, None, None]) & (position >= -1) & (position <= size)  # padding and far-outside samples: 0
    position = torch.where(counts, position, 0.0).clamp(min=0)  # (padding samples of an empty grid are NaN)
    low = position.long()  # the (int) cast of a non-negative position
    at_edge = low >= size - 1
    low = torch.where(at_edge, size - 1, low)
    high = torch.where(at_edge, size - 1, low + 1)
    fraction = torch.where(at_edge, 0.0, position - low)  # the sample sits on the last index
    weight = counts.to(length.dtype)
    matrix = torch.zeros(len(start), bins, size, dtype=length.dtype)
    matrix.scatter_add_(2, low, (1 - fraction) * weight)
    matrix.scatter_add_(2, high, fraction * weight)
    return matrix, grid


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
    _check_features(input, "roi_align")
    rois = _as_rois(boxes, len(input), input.dtype, "roi_align")
    out_height, out_width = _pair(output_size, "roi_align")
    _, _, height, width = input.shape
    offset = 0.5 if aligned else 0.0
    start_x, start_y = rois[:, 1] * spatial_scale - offset, rois[:, 2] * spatial_scale - offset
    roi_width = rois[:, 3] * spatial_scale - offset - start_x
    roi_height = rois[:, 4] * spatial_scale - offset - start_y
    if not aligned:  # the legacy minimum: a RoI is at least one feature cell
        roi_width, roi_height = roi_width.clamp(min=1.0), roi_height.clamp(min=1.0)
    rows, grid_h = _interpolation_matrix(start_y, roi_height, out_height, height, sampling_ratio)  # (K, out_h, H)
    columns, grid_w = _interpolation_matrix(start_x, roi_width, out_width, width, sampling_ratio)  # (K, out_w, W)
    rows = rows / (grid_h * grid_w).clamp(min=1)[:, None, None]  # the average over the bin's samples
    channels, batch_index = input.shape[1], rois[:, 0].long()
    pooled, order = [], []
    for image in torch.unique(batch_index).tolist():  # the RoIs of one image share its map: one matrix product
        members = torch.nonzero(batch_index == image).flatten()
        features = input[image].transpose(0, 1).reshape(height, channels * width)  # (H, C * W)
        by_rows = (rows[members].reshape(-1, height) @ features).view(len(members), out_height * channels, width)  # (k, out_h * C, W)
        by_bins = by_rows @ columns[members].transpose(1, 2)  # (k, out_h * C, out_w)
        pooled.append(by_bins.view(len(members), out_height, channels, out_width).transpose(1, 2))
        order.append(members)
    if not pooled:
        return input.new_zeros(0, channels, out_height, out_width) + input.sum() * 0  # still part of input's graph
    return torch.cat(pooled)[torch.argsort(torch.cat(order))]


def _round_half_away(x: Tensor) -> Tensor:
    """C's ``round``: halves away from zero (``torch.round`` rounds them to even)."""
    truncated = x.trunc()
    return torch.where((x - truncated).abs() == 0.5, truncated + x.sign(), x.round())


def _bin_edges(start: Tensor, end: Tensor, bins: int, size: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """First and one-past-last feature index of every bin of every RoI along one axis, clipped to ``[0, size]``."""
    length = (end - start + 1).clamp(min=1).to(dtype)  # (K,) rounded corners, both included: the "+ 1"
    bin_size = length / bins
    steps = torch.arange(bins + 1, dtype=dtype)
    first = torch.floor(steps[None, :-1] * bin_size[:, None]).long()  # (K, bins)
    last = torch.ceil(steps[None, 1:] * bin_size[:, None]).long()
    return (first + start[:, None]).clamp(0, size), (last + start[:, None]).clamp(0, size)


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
    _check_features(input, "roi_pool")
    rois = _as_rois(boxes, len(input), input.dtype, "roi_pool")
    out_height, out_width = _pair(output_size, "roi_pool")
    _, _, height, width = input.shape
    corners = _round_half_away(rois[:, 1:] * spatial_scale).long()  # (K, 4)
    row_first, row_last = _bin_edges(corners[:, 1], corners[:, 3], out_height, height, input.dtype)  # (K, out_h)
    col_first, col_last = _bin_edges(corners[:, 0], corners[:, 2], out_width, width, input.dtype)  # (K, out_w)
    rows, columns = torch.arange(height), torch.arange(width)
    in_row = (rows >= row_first[..., None]) & (rows < row_last[..., None])  # (K, out_h, H)
    in_column = (columns >= col_first[..., None]) & (columns < col_last[..., None])  # (K, out_w, W)
    features = input[rois[:, 0].long()]  # (K, C, H, W)
    # A maximum over a rectangle is the maximum over its rows of the maximum over its columns; the first maximal
    # column of the first maximal row is the first maximal cell in row-major order, as torchvision's scan finds.
    by_column = features[:, :, :, None, :].masked_fill(~in_column[:, None, None], -math.inf).max(dim=4).values  # (K, C, H, out_w)
    by_bin = by_column.transpose(2, 3)[:, :, None].masked_fill(~in_row[:, None, :, None], -math.inf).max(dim=4).values  # (K, C, out_h, out_w)
    empty = ~(in_row.any(2)[:, :, None] & in_column.any(2)[:, None, :])  # (K, out_h, out_w)
    return torch.where(empty[:, None], torch.zeros((), dtype=input.dtype), by_bin)


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
    _check_boxes(boxes, "encode_boxes boxes")
    _check_boxes(anchors, "encode_boxes anchors")
    if len(boxes) != len(anchors):
        raise ValueError(f"encode_boxes: {len(boxes)} boxes but {len(anchors)} anchors; expected one anchor per box")
    anchors = anchors.to(boxes.dtype)
    wx, wy, ww, wh = weights
    anchor_w, anchor_h = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    anchor_x, anchor_y = anchors[:, 0] + 0.5 * anchor_w, anchors[:, 1] + 0.5 * anchor_h
    box_w, box_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    box_x, box_y = boxes[:, 0] + 0.5 * box_w, boxes[:, 1] + 0.5 * box_h
    return torch.stack([wx * (box_x - anchor_x) / anchor_w, wy * (box_y - anchor_y) / anchor_h,
                        ww * torch.log(box_w / anchor_w), wh * torch.log(box_h / anchor_h)], dim=1)  # fmt: skip


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
    if not isinstance(deltas, Tensor) or not deltas.is_floating_point() or deltas.dim() != 2 or deltas.shape[1] % 4:
        got = f"{deltas.dtype} {tuple(deltas.shape)}" if isinstance(deltas, Tensor) else type(deltas).__name__
        raise ValueError(f"decode_boxes: expected floating deltas Tensor[N, 4 * k], got {got}")
    _check_boxes(anchors, "decode_boxes anchors")
    if len(deltas) != len(anchors):
        raise ValueError(f"decode_boxes: {len(deltas)} rows of deltas but {len(anchors)} anchors")
    anchors = anchors.to(deltas.dtype)
    wx, wy, ww, wh = weights
    anchor_w, anchor_h = anchors[:, 2:3] - anchors[:, 0:1], anchors[:, 3:4] - anchors[:, 1:2]  # (N, 1)
    anchor_x, anchor_y = anchors[:, 0:1] + 0.5 * anchor_w, anchors[:, 1:2] + 0.5 * anchor_h
    centre_x = deltas[:, 0::4] / wx * anchor_w + anchor_x  # (N, k)
    centre_y = deltas[:, 1::4] / wy * anchor_h + anchor_y
    half_w = 0.5 * (torch.exp(torch.clamp(deltas[:, 2::4] / ww, max=clamp)) * anchor_w)
    half_h = 0.5 * (torch.exp(torch.clamp(deltas[:, 3::4] / wh, max=clamp)) * anchor_h)
    return torch.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], dim=2).flatten(1)


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
    height, width = grid_size
    if height < 0 or width < 0 or stride < 1:
        raise ValueError(f"anchor_grid: expected grid_size (H, W) >= 0 and stride >= 1, got {grid_size} and {stride}")
    if not sizes or not aspect_ratios or min(sizes) <= 0 or min(aspect_ratios) <= 0:
        raise ValueError(f"anchor_grid: expected non-empty positive sizes and aspect ratios, got {sizes} and {aspect_ratios}")
    scales = torch.as_tensor(sizes, dtype=torch.float32)
    height_ratios = torch.sqrt(torch.as_tensor(aspect_ratios, dtype=torch.float32))
    half_w = ((1 / height_ratios)[:, None] * scales[None, :]).flatten() / 2  # (A,) ratio-major
    half_h = (height_ratios[:, None] * scales[None, :]).flatten() / 2
    cell = torch.stack([-half_w, -half_h, half_w, half_h], dim=1).round()  # (A, 4)
    shift_x = (torch.arange(width, dtype=torch.float32) + offset) * stride
    shift_y = (torch.arange(height, dtype=torch.float32) + offset) * stride
    y, x = torch.meshgrid(shift_y, shift_x, indexing="ij")  # (H, W) each
    shifts = torch.stack([x, y, x, y], dim=-1).reshape(-1, 1, 4)  # (H * W, 1, 4)
    return (shifts + cell[None]).reshape(-1, 4)


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
    if not isinstance(masks, Tensor) or not masks.is_floating_point() or masks.dim() != 4 or masks.shape[1] != 1:
        got = f"{masks.dtype} {tuple(masks.shape)}" if isinstance(masks, Tensor) else type(masks).__name__
        raise ValueError(f"paste_masks_in_image: expected floating masks Tensor[N, 1, M, M], got {got}")
    _check_boxes(boxes, "paste_masks_in_image boxes")
    image_height, image_width = image_shape
    if len(masks) != len(boxes) or image_height < 1 or image_width < 1:
        raise ValueError(f"paste_masks_in_image: expected one box per mask and image_shape (H, W) >= 1, got {len(boxes)} boxes for "
                         f"{len(masks)} masks and {image_shape}")  # fmt: skip
    size = masks.shape[-1]
    scale = (size + 2 * padding) / size
    padded = F.pad(masks, (padding,) * 4)
    half_w, half_h = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale, (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    centre_x, centre_y = (boxes[:, 2] + boxes[:, 0]) * 0.5, (boxes[:, 3] + boxes[:, 1]) * 0.5
    corners = torch.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], dim=1).long()
    pasted = masks.new_zeros(len(masks), 1, image_height, image_width)
    for index, (x1, y1, x2, y2) in enumerate(corners.tolist()):
        width, height = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        resized = F.interpolate(padded[index : index + 1], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
        left, right = max(x1, 0), min(x2 + 1, image_width)
        top, bottom = max(y1, 0), min(y2 + 1, image_height)
        if right > left and bottom > top:
            pasted[index, 0, top:bottom, left:right] = resized[top - y1 : bottom - y1, left - x1 : right - x1]
    return pasted


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
    _check_mask(masks1, "mask_iou masks1", dims=3)
    _check_mask(masks2, "mask_iou masks2", dims=3)
    if masks1.shape[1:] != masks2.shape[1:]:
        raise ValueError(f"mask_iou: masks of different sizes {tuple(masks1.shape[1:])} and {tuple(masks2.shape[1:])}")
    first, second = masks1.flatten(1).double(), masks2.flatten(1).double()  # exact counts in float64
    intersection = first @ second.T  # (N, M)
    union = first.sum(1)[:, None] + second.sum(1)[None, :] - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1), 0.0).float()


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
    _check_mask(mask, "rle_encode", dims=2)
    height, width = mask.shape
    pixels = mask.bool().T.reshape(-1)  # column-major order
    if not len(pixels):
        return {"size": [height, width], "counts": []}
    changes = torch.nonzero(pixels[1:] != pixels[:-1]).flatten() + 1
    edges = torch.cat([torch.zeros(1, dtype=torch.int64), changes, torch.tensor([len(pixels)])])
    runs = edges.diff().tolist()
    return {"size": [height, width], "counts": [0] + runs if bool(pixels[0]) else runs}


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
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle or isinstance(rle["counts"], (str, bytes)):
        raise TypeError("rle_decode: expected {'size': [H, W], 'counts': [int, ...]} (uncompressed counts)")
    height, width = (int(v) for v in rle["size"])
    counts = torch.as_tensor(list(rle["counts"]), dtype=torch.int64)
    if (counts < 0).any() or int(counts.sum()) != height * width:
        raise ValueError(f"rle_decode: counts must be non-negative and sum to H * W = {height * width}, got sum {int(counts.sum())}")
    values = torch.arange(len(counts)) % 2 == 1  # runs of 0s, 1s, 0s, ...
    return torch.repeat_interleave(values, counts).reshape(width, height).T.contiguous()


# --- the tiny Mask R-CNN ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MaskRCNNConfig:
    """How train_mask_rcnn builds and trains its model (see specs/08_instance_seg.yaml for the calibration)."""

    widths: tuple[int, int, int] = (32, 64, 96)  # backbone channels at strides 2, 4 and 8
    fpn_channels: int = 64  # channels of the stride-4 map that the RPN and the box head read
    mask_channels: int = 32  # channels of the stride-2 map that the mask head reads
    anchor_sizes: tuple[float, ...] = (8.0, 12.0, 18.0, 27.0)  # pixels: the objects are 5-29 pixels across
    anchor_ratios: tuple[float, ...] = (1.0,)  # nine in ten boxes have a side ratio within 0.9-1.1
    rpn_batch: int = 64  # anchors per image in the RPN loss
    rpn_positive_fraction: float = 0.5  # at most this fraction of them positive
    rpn_pre_nms: int = 200  # best-scoring anchors per image decoded into proposals
    rpn_nms: float = 0.7  # IoU above which NMS drops a proposal
    rpn_post_nms: int = 48  # proposals kept per image
    roi_batch: int = 32  # proposals (ground truth included) per image in the box head's loss
    roi_positive_fraction: float = 0.25  # at most this fraction of them foreground
    mask_rois: int = 8  # foreground RoIs per image the mask head trains on
    box_pool: int = 7  # RoIAlign bins of the box head, from the stride-4 map
    mask_pool: int = 14  # RoIAlign bins of the mask head, from the stride-2 map
    mask_convs: int = 2  # 3x3 convolutions of the mask head before its 2x upsampling
    box_channels: int = 32  # the stride-4 map is reduced to this many channels (a 1x1 convolution) for the box head
    representation: int = 256  # width of the box head's two fully connected layers
    steps: int = 700  # optimisation steps: the fixed schedule (69-75 s on an idle 2-core machine, one thread)
    batch_size: int = 8  # images per step
    learning_rate: float = 3e-3  # AdamW's peak step size: linear warm-up, then a cosine decay to 0
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    score_threshold: float = 0.01  # predict_mask_rcnn keeps detections above this class probability
    nms_threshold: float = 0.5  # and suppresses same-class overlaps above this IoU
    detections: int = 100  # at most this many per image, the best-scoring
    mask_threshold: float = 0.5  # a pixel belongs to the mask when its pasted probability exceeds this


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class _Backbone(nn.Module):
    """Three strided stages and a small feature pyramid (1x1 lateral convolutions, nearest upsampling, sums): a
    stride-4 map for the RPN and the box head, a stride-2 one for the masks. ``(B, 3, 64, 64) -> (B, fpn, 16, 16),
    (B, mask, 32, 32)``."""

    def __init__(self, config: _MaskRCNNConfig) -> None:
        super().__init__()
        c2, c4, c8 = config.widths
        self.stride2 = nn.Sequential(_conv(3, c2, 2), _conv(c2, c2))
        self.stride4 = nn.Sequential(_conv(c2, c4, 2), _conv(c4, c4))
        self.stride8 = nn.Sequential(_conv(c4, c8, 2), _conv(c8, c8))
        self.lateral8, self.lateral4 = nn.Conv2d(c8, config.fpn_channels, 1), nn.Conv2d(c4, config.fpn_channels, 1)
        self.lateral2, self.reduce4 = nn.Conv2d(c2, config.mask_channels, 1), nn.Conv2d(config.fpn_channels, config.mask_channels, 1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        c2 = self.stride2(images)  # (B, c2, 32, 32)
        c4 = self.stride4(c2)  # (B, c4, 16, 16)
        c8 = self.stride8(c4)  # (B, c8, 8, 8)
        p4 = self.lateral4(c4) + F.interpolate(self.lateral8(c8), scale_factor=2.0, mode="nearest")  # (B, fpn, 16, 16)
        p2 = self.lateral2(c2) + F.interpolate(self.reduce4(p4), scale_factor=2.0, mode="nearest")  # (B, mask, 32, 32)
        return p4, p2


class _TinyMaskRCNN(nn.Module):
    """Mask R-CNN (He et al., 2017) for small images: backbone, RPN, RoIAlign, box head, mask head.

    The two stages: a backbone with a small feature pyramid; a region proposal network (RPN) scoring and refining the
    anchors of every stride-4 cell; RoIAlign of each proposal on the stride-4 map for the box head (class and
    class-specific box deltas) and on the stride-2 map for the mask head (one 28 x 28 mask per class). Training samples
    anchors and proposals (the ground truth among them) per image, as torchvision's Mask R-CNN does; the mask head
    learns from the true masks resampled inside each foreground proposal (RoIAlign with ``aligned=True``, so targets
    and boxes share the pixel-edge convention). Two choices matter on a CPU and on 64 x 64 images:

    - :func:`roi_align` runs the training (forward and backward), several times faster than torchvision's CPU kernel,
      whose backward would otherwise dominate a step (tests/benchmarks/test_instance_seg_benchmark.py);
    - predicted masks are pasted with sub-pixel box corners (:func:`_paste`): torchvision's paste_masks_in_image
      rounds the box to whole pixels and adds its legacy pixel, which on objects 5-29 pixels across costs about 0.1
      mask AP.

    Args:
        config: sizes of every part.
        num_classes (int): object classes K (the box head adds a background class 0; class k is label k + 1).
        image_size (tuple[int, int]): ``(H, W)`` of the images, multiples of 8.
    """

    def __init__(self, config: _MaskRCNNConfig, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.config, self.num_classes, self.image_size = config, num_classes, image_size
        self.backbone = _Backbone(config)
        channels = config.fpn_channels
        anchors_per_cell = len(config.anchor_sizes) * len(config.anchor_ratios)
        self.rpn = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.rpn_objectness = nn.Conv2d(channels, anchors_per_cell, 1)
        self.rpn_deltas = nn.Conv2d(channels, 4 * anchors_per_cell, 1)
        grid = (image_size[0] // 4, image_size[1] // 4)
        self.register_buffer("anchors", anchor_grid(grid, 4, config.anchor_sizes, config.anchor_ratios, offset=0.5), persistent=False)
        self.box_reduce = nn.Conv2d(channels, config.box_channels, 1)
        self.box_head = nn.Sequential(
            nn.Flatten(), nn.Linear(config.box_channels * config.box_pool**2, config.representation), nn.ReLU(inplace=True),
            nn.Linear(config.representation, config.representation), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.box_classes = nn.Linear(config.representation, num_classes + 1)
        self.box_deltas = nn.Linear(config.representation, 4 * (num_classes + 1))
        m = config.mask_channels
        convs = [layer for _ in range(config.mask_convs) for layer in (nn.Conv2d(m, m, 3, padding=1), nn.ReLU(inplace=True))]
        # each cell of the 14 x 14 grid predicts the 2 x 2 logits below it, for every class: 28 x 28 masks by a pixel
        # shuffle (as fine as the usual transposed convolution, and several times faster on a CPU)
        self.mask_head = nn.Sequential(*convs, nn.Conv2d(m, 4 * num_classes, 1), nn.PixelShuffle(2))

    def rpn_outputs(self, p4: Tensor) -> tuple[Tensor, Tensor]:
        """Objectness logits ``(B, A_total)`` and deltas ``(B, A_total, 4)``, ordered like ``self.anchors``."""
        hidden = self.rpn(p4)
        batch = len(p4)
        objectness = self.rpn_objectness(hidden).permute(0, 2, 3, 1).reshape(batch, -1)  # (row, column, anchor)
        deltas = self.rpn_deltas(hidden)
        deltas = deltas.view(batch, -1, 4, *deltas.shape[2:]).permute(0, 3, 4, 1, 2).reshape(batch, -1, 4)
        return objectness, deltas

    def proposals(self, objectness: Tensor, deltas: Tensor) -> list[Tensor]:
        """Per image, at most ``rpn_post_nms`` boxes: the best anchors decoded, clipped, suppressed."""
        config, (height, width) = self.config, self.image_size
        result = []
        for scores, codes in zip(objectness.detach(), deltas.detach()):
            best = scores.topk(min(config.rpn_pre_nms, len(scores))).indices
            boxes = torchvision.ops.clip_boxes_to_image(decode_boxes(codes[best], self.anchors[best]), (height, width))
            keep = torchvision.ops.remove_small_boxes(boxes, 1.0)
            boxes, kept_scores = boxes[keep], scores[best][keep]
            keep = torchvision.ops.nms(boxes, kept_scores, config.rpn_nms)[: config.rpn_post_nms]
            result.append(boxes[keep])
        return result

    def box_outputs(self, p4: Tensor, rois: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Class logits ``(R, K + 1)`` and per-class deltas ``(R, K + 1, 4)`` of every RoI."""
        pooled = roi_align(self.box_reduce(p4), rois, self.config.box_pool, spatial_scale=0.25, sampling_ratio=2, aligned=True)
        hidden = self.box_head(pooled)
        return self.box_classes(hidden), self.box_deltas(hidden).view(len(hidden), -1, 4)

    def mask_logits(self, p2: Tensor, rois: list[Tensor]) -> Tensor:
        """Mask logits ``(R, K, 28, 28)`` of every RoI, one channel per class."""
        pooled = roi_align(p2, rois, self.config.mask_pool, spatial_scale=0.5, sampling_ratio=2, aligned=True)
        return self.mask_head(pooled)


def _sample(labels: Tensor, count: int, positive_fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random positives (``labels > 0``), at most ``count * positive_fraction``, and negatives (``labels == 0``) up to
    ``count`` in all; ``-1`` is ignored. Returns the indices of both."""
    positive, negative = torch.nonzero(labels > 0).flatten(), torch.nonzero(labels == 0).flatten()
    positives = min(len(positive), int(count * positive_fraction))
    negatives = min(len(negative), count - positives)
    positive = positive[torch.randperm(len(positive), generator=generator)[:positives]]
    negative = negative[torch.randperm(len(negative), generator=generator)[:negatives]]
    return positive, negative


def _anchor_labels(anchors: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    """RPN targets of one image: label 1 (IoU >= 0.7 with a box, or an anchor a box overlaps best), 0 (IoU < 0.3),
    -1 (ignored), and the index of each anchor's best box."""
    labels = torch.zeros(len(anchors), dtype=torch.int64)
    if not len(boxes):
        return labels, labels.clone()
    iou = torchvision.ops.box_iou(anchors, boxes)  # (A, G)
    best_iou, matched = iou.max(dim=1)
    labels[best_iou >= 0.3] = -1
    labels[best_iou >= 0.7] = 1
    best_for_box = iou.max(dim=0).values  # (G,)
    labels[((iou == best_for_box[None]) & (best_for_box[None] > 0)).any(dim=1)] = 1  # every box gets an anchor
    return labels, matched


def _mask_targets(masks: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Each true mask ``(P, H, W)`` resampled on a ``size x size`` grid inside its RoI ``(P, 4)``, as
    ``roi_align(aligned=True, sampling_ratio=2)`` would (one map per RoI, so no per-image grouping): ``(P, size,
    size)`` soft targets in [0, 1]."""
    height, width = masks.shape[1:]
    rows, grid_h = _interpolation_matrix(boxes[:, 1] - 0.5, boxes[:, 3] - boxes[:, 1], size, height, 2)  # (P, size, H)
    columns, grid_w = _interpolation_matrix(boxes[:, 0] - 0.5, boxes[:, 2] - boxes[:, 0], size, width, 2)  # (P, size, W)
    return rows @ masks.to(rows.dtype) @ columns.transpose(1, 2) / (grid_h * grid_w)[:, None, None]


def _losses(model: _TinyMaskRCNN, images: Tensor, targets: list[dict[str, Tensor]], generator: torch.Generator) -> dict[str, Tensor]:
    """Mask R-CNN's five losses for a batch: RPN objectness and boxes, box head classes and boxes, masks."""
    config = model.config
    p4, p2 = model.backbone(images)
    objectness, deltas = model.rpn_outputs(p4)
    # RPN: sampled anchors of every image, their labels, and the boxes the positives regress to
    sampled_logits, sampled_labels, positive_codes, positive_anchors, positive_boxes = [], [], [], [], []
    for i, target in enumerate(targets):
        labels, matched = _anchor_labels(model.anchors, target["boxes"])
        positive, negative = _sample(labels, config.rpn_batch, config.rpn_positive_fraction, generator)
        sampled = torch.cat([positive, negative])
        sampled_logits.append(objectness[i, sampled])
        sampled_labels.append((labels[sampled] > 0).to(objectness.dtype))
        positive_codes.append(deltas[i, positive])
        positive_anchors.append(model.anchors[positive])
        positive_boxes.append(target["boxes"][matched[positive]] if len(target["boxes"]) else model.anchors[positive])
    sampled_count = max(sum(len(labels) for labels in sampled_labels), 1)
    rpn_objectness = F.binary_cross_entropy_with_logits(torch.cat(sampled_logits), torch.cat(sampled_labels))
    rpn_targets = encode_boxes(torch.cat(positive_boxes), torch.cat(positive_anchors))
    rpn_boxes = F.smooth_l1_loss(torch.cat(positive_codes), rpn_targets, beta=1 / 9, reduction="sum") / sampled_count

    # Box and mask heads: sampled proposals (the ground truth among them), their classes, boxes and masks
    rois, roi_labels, roi_boxes, mask_rois, mask_classes, mask_truth = [], [], [], [], [], []
    for proposals, target in zip(model.proposals(objectness, deltas), targets):
        boxes, classes = target["boxes"], target["labels"]
        proposals = torch.cat([proposals, boxes])  # the ground truth is always among the proposals
        if len(boxes):
            best_iou, matched = torchvision.ops.box_iou(proposals, boxes).max(dim=1)  # (R,)
            labels = torch.where(best_iou >= 0.5, classes[matched] + 1, 0)
        else:  # an image without objects: every proposal is background
            labels = matched = torch.zeros(len(proposals), dtype=torch.int64)
        positive, negative = _sample(labels, config.roi_batch, config.roi_positive_fraction, generator)
        sampled = torch.cat([positive, negative])
        rois.append(proposals[sampled])
        roi_labels.append(labels[sampled])
        roi_boxes.append(boxes[matched[sampled]] if len(boxes) else proposals[sampled])  # (used for the foreground only)
        masked = positive[: config.mask_rois]  # positives come in random order
        mask_rois.append(proposals[masked])
        mask_classes.append(classes[matched[masked]])
        mask_truth.append(target["masks"][matched[masked]])
    class_logits, box_deltas = model.box_outputs(p4, rois)  # (R, K + 1), (R, K + 1, 4)
    labels = torch.cat(roi_labels)
    foreground = torch.nonzero(labels > 0).flatten()
    box_targets = encode_boxes(torch.cat(roi_boxes)[foreground], torch.cat(rois)[foreground])
    box_classes = F.cross_entropy(class_logits, labels)
    box_boxes = F.smooth_l1_loss(box_deltas[foreground, labels[foreground]], box_targets, beta=1 / 9, reduction="sum") / max(len(labels), 1)
    logits = model.mask_logits(p2, mask_rois)  # (P, K, 28, 28)
    classes = torch.cat(mask_classes)
    truth = _mask_targets(torch.cat(mask_truth), torch.cat(mask_rois), logits.shape[-1])  # (P, 28, 28)
    masks = F.binary_cross_entropy_with_logits(logits[torch.arange(len(classes)), classes], truth) if len(classes) else logits.sum() * 0
    return {"rpn_objectness": rpn_objectness, "rpn_boxes": rpn_boxes, "box_classes": box_classes, "box_boxes": box_boxes, "masks": masks}


def _paste(probabilities: Tensor, boxes: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Masks ``(D, M, M)`` (one per box, covering it exactly) resampled at every pixel centre of the image, bilinearly
    with sub-pixel box corners: ``(D, H, W)``, 0 outside the boxes."""
    height, width = image_size
    x = (torch.arange(width, dtype=boxes.dtype) + 0.5 - boxes[:, 0:1]) / (boxes[:, 2:3] - boxes[:, 0:1]).clamp(min=1e-3) * 2 - 1  # (D, W)
    y = (torch.arange(height, dtype=boxes.dtype) + 0.5 - boxes[:, 1:2]) / (boxes[:, 3:4] - boxes[:, 1:2]).clamp(min=1e-3) * 2 - 1  # (D, H)
    grid = torch.stack([x[:, None, :].expand(-1, height, -1), y[:, :, None].expand(-1, -1, width)], dim=-1)  # (D, H, W, 2)
    return F.grid_sample(probabilities[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


def _detect(model: _TinyMaskRCNN, images: Tensor) -> list[dict[str, Tensor]]:
    """Detections with masks for a batch of images (eval mode, no gradients)."""
    config = model.config
    p4, p2 = model.backbone(images.contiguous(memory_format=torch.channels_last))
    proposals = model.proposals(*model.rpn_outputs(p4))
    class_logits, box_deltas = model.box_outputs(p4, proposals)
    scores = torch.softmax(class_logits, dim=1)[:, 1:]  # (R, K): background dropped
    boxes = decode_boxes(box_deltas[:, 1:].reshape(len(box_deltas), -1), torch.cat(proposals)).view(len(box_deltas), -1, 4)
    boxes = torchvision.ops.clip_boxes_to_image(boxes, model.image_size)  # (R, K, 4)
    results = []
    for start, stop in _spans([len(p) for p in proposals]):
        image_scores, image_boxes = scores[start:stop].flatten(), boxes[start:stop].reshape(-1, 4)
        labels = torch.arange(model.num_classes).repeat(stop - start)
        keep = torch.nonzero(image_scores > config.score_threshold).flatten()
        keep = keep[torchvision.ops.remove_small_boxes(image_boxes[keep], 0.5)]
        keep = keep[torchvision.ops.batched_nms(image_boxes[keep], image_scores[keep], labels[keep], config.nms_threshold)][: config.detections]
        results.append({"boxes": image_boxes[keep], "scores": image_scores[keep], "labels": labels[keep]})
    classes = torch.cat([r["labels"] for r in results])
    if len(classes):
        logits = model.mask_logits(p2, [r["boxes"] for r in results])  # (D, K, 28, 28)
        probabilities = torch.sigmoid(logits[torch.arange(len(classes)), classes])  # (D, 28, 28): the detected class's
        pasted = _paste(probabilities, torch.cat([r["boxes"] for r in results]), model.image_size) > config.mask_threshold
    else:
        pasted = torch.zeros(0, *model.image_size, dtype=torch.bool)
    for result, (start, stop) in zip(results, _spans([len(r["boxes"]) for r in results])):
        result["masks"] = pasted[start:stop]
    return results


def _spans(lengths: list[int]) -> list[tuple[int, int]]:
    """``[(0, l0), (l0, l0 + l1), ...]``."""
    ends = torch.tensor(lengths).cumsum(0).tolist()
    return [(end - length, end) for length, end in zip(lengths, ends)]


def _check_split(split: dict, name: str, with_labels: bool) -> Tensor:
    """The split's images ``Tensor[N, 3, H, W]``, after checking the split holds what ``name`` needs."""
    images = split_images(split, name, channels=3)
    if images.shape[2] % 8 or images.shape[3] % 8:
        raise ValueError(f"{name}: expected 'images' Tensor[N, 3, H, W] with H, W multiples of 8, got {tuple(images.shape)}")
    if with_labels:
        for key in ("boxes", "classes", "object_image", "instances"):
            if not isinstance(split.get(key), Tensor):
                raise ValueError(f"{name}: expected {key!r} as a tensor (boxes float32[M, 4] xyxy, classes and object_image "
                                 "int64[M], instances uint8[N, H, W])")  # fmt: skip
    return images


def _image_targets(train: dict) -> list[dict[str, Tensor]]:
    """Per training image: its objects' ``boxes`` [G, 4] xyxy, ``labels`` int64[G] and visible ``masks`` bool[G, H, W]."""
    owners = train["object_image"].long()
    first = torch.searchsorted(owners, torch.arange(len(train["images"])))  # objects are stored image by image
    targets = []
    for image, start in enumerate(first.tolist()):
        count = int((owners == image).sum())
        objects = torch.arange(1, count + 1, dtype=train["instances"].dtype)
        targets.append({
            "boxes": train["boxes"][start : start + count].float(),
            "labels": train["classes"][start : start + count].long(),
            "masks": train["instances"][image][None] == objects[:, None, None],
        })  # fmt: skip
    return targets


def _flip(images: Tensor, targets: list[dict[str, Tensor]], horizontal: bool, vertical: bool) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """The batch mirrored left-right and/or top-bottom, boxes and masks with it."""
    height, width = images.shape[2:]
    flipped = []
    for target in targets:
        boxes, masks = target["boxes"].clone(), target["masks"]
        if horizontal:
            boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
            masks = masks.flip(2)
        if vertical:
            boxes[:, [1, 3]] = height - target["boxes"][:, [3, 1]]
            masks = masks.flip(1)
        flipped.append({"boxes": boxes, "labels": target["labels"], "masks": masks})
    dims = [d for d, flip in ((3, horizontal), (2, vertical)) if flip]
    return (images.flip(dims) if dims else images), flipped


def _train(train: dict, seed: int, budget_s: float, config: _MaskRCNNConfig) -> _TinyMaskRCNN:
    """train_mask_rcnn with the recipe ``config``."""
    clock = BudgetClock(budget_s, "train_mask_rcnn")
    images = _check_split(train, "train_mask_rcnn", with_labels=True)  # (N, 3, H, W)
    targets = _image_targets(train)
    generator = seeded_generator(seed)
    with seeded(seed):
        model = _TinyMaskRCNN(config, num_classes=int(train["classes"].max()) + 1, image_size=tuple(images.shape[2:]))
    model = model.to(memory_format=torch.channels_last)  # NHWC: faster convolutions on a CPU
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True)
    schedule = warmup_cosine(optimizer, config.steps, config.warmup_steps)
    model.train()
    for _ in range(config.steps):
        if clock.expired():
            break
        batch = torch.randint(0, len(images), (config.batch_size,), generator=generator)
        horizontal, vertical = (torch.rand(2, generator=generator) < 0.5).tolist()
        batch_images, batch_targets = _flip(images[batch], [targets[i] for i in batch.tolist()], horizontal, vertical)
        losses = _losses(model, batch_images.contiguous(memory_format=torch.channels_last), batch_targets, generator)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()
        schedule.step()
    return model.eval()


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
    return _train(train, seed, budget_s, _MaskRCNNConfig())


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
    images = _check_split(inputs, "predict_mask_rcnn", with_labels=False)
    model.eval()
    with torch.no_grad():
        return [result for chunk in images.split(64) for result in _detect(model, chunk)]
