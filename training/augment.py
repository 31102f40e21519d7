"""Joint augmentation of RGB-D samples (numpy / OpenCV), keeping image, depth, valid and K consistent.

A sample is the project's dict: ``image`` (H, W, 3) uint8 RGB, ``depth`` (H, W) float32 metres
(0 where invalid), ``valid`` (H, W) bool, ``K`` (3, 3) pinhole intrinsics, ``name``. Every op
returns a new dict and leaves its input untouched. Only those five keys are transformed; any
other key (e.g. a synthetic sample's ``meta``) is passed on unchanged and so still describes the
frame before augmentation.

Conventions (the project's pixel-centre convention: integer indices are pixel centres, the image
spans ``[−0.5, W − 0.5]``):

- **Depth and validity are resampled with nearest neighbour** (never blended), so augmentation
  never invents a depth value and never mixes valid with invalid pixels. The image is bilinear.
- **Crop** at ``(top, left)``: ``cx −= left``, ``cy −= top``. Exact.
- **Scale** by ``s`` (output ``round(H·s) × round(W·s)``, actual per-axis factors ``sx = W'/W``,
  ``sy = H'/H``): ``fx' = sx·fx``, ``cx' = (cx + 0.5)·sx − 0.5`` (likewise y). The depth values are
  kept: scaling the image together with the focal length is the same camera at a finer or
  coarser pixel pitch, so every back-projected point is unchanged — geometrically exact. With
  ``keep_focal=True`` it is Eigen et al.'s (2014) variant instead: focal lengths kept and depth
  divided by ``s``, as if the camera had moved closer; back-projection then compresses the scene
  along the optical axis (X, Y kept, Z/s), an approximation that keeps the focal length of the
  training set fixed.
- **Rotation** by ``angle`` degrees (positive = content turns counter-clockwise on screen, as
  ``cv2.getRotationMatrix2D``) about the principal point ``(cx, cy)`` in normalised image
  coordinates (pixel offsets scaled by ``1/fx``, ``1/fy``). That is exactly a camera roll about the
  optical axis: ``K`` and the depth values (z) are unchanged and the back-projected points are
  the original ones rotated by ``Rz = [[c, s, 0], [−s, c, 0], [0, 0, 1]]``. Pixels whose source is
  outside the frame become invalid depth (0, ``valid`` False) and black.
- **Horizontal flip**: ``cx' = (W − 1) − cx`` (and the skew negated); the scene is mirrored
  (X → −X). Exact.
- **Colour** ops (jitter, channel permutation) touch the image only.

Nearest-neighbour resampling picks the source pixel whose area contains the target pixel's centre,
so a resampled depth sample can sit up to half a source pixel from where K places it; rotations
by multiples of 90° about an integer principal point and downscales by 1/odd integers are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import cv2
import numpy as np
import torch

Sample = dict[str, Any]


def _replace(sample: Sample, **changes: Any) -> Sample:
    return {**sample, **changes}


def _size(sample: Sample) -> tuple[int, int]:
    h, w = sample["depth"].shape
    if sample["image"].shape[:2] != (h, w) or sample["valid"].shape != (h, w):
        raise ValueError(
            f"{sample.get('name', 'sample')}: image {sample['image'].shape[:2]}, depth {(h, w)} and valid "
            f"{sample['valid'].shape} must have the same size"
        )
    return h, w


# --------------------------------------------------------------------------- geometric ops


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """The ``height``×``width`` window at (``top``, ``left``); the principal point moves with it."""
    h, w = _size(sample)
    if not (top >= 0 and left >= 0 and height > 0 and width > 0 and top + height <= h and left + width <= w):
        raise ValueError(f"crop {width}×{height} at (left={left}, top={top}) does not fit a {w}×{h} sample")
    rows, cols = slice(top, top + height), slice(left, left + width)
    K = np.array(sample["K"], dtype=np.float64)
    K[0, 2] -= left
    K[1, 2] -= top
    return _replace(
        sample,
        image=sample["image"][rows, cols].copy(),
        depth=sample["depth"][rows, cols].copy(),
        valid=sample["valid"][rows, cols].copy(),
        K=K,
    )


def random_crop(sample: Sample, size: tuple[int, int], rng: np.random.Generator) -> Sample:
    """A uniformly placed crop of ``size = (height, width)``."""
    h, w = _size(sample)
    ch, cw = size
    if ch > h or cw > w:
        raise ValueError(f"crop {cw}×{ch} is larger than the {w}×{h} sample")
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return crop(sample, top, left, ch, cw)


def scale(sample: Sample, factor: float, *, keep_focal: bool = False) -> Sample:
    """Resize by ``factor`` (image bilinear, depth/valid nearest) with K scaled to match.

    ``keep_focal=False`` (default): depth kept, K scaled, geometrically exact. ``True``: Eigen's
    variant, depth divided by ``factor`` and focal lengths kept (see the module docstring).
    """
    if not factor > 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    h, w = _size(sample)
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    sy, sx = nh / h, nw / w
    image = cv2.resize(sample["image"], (nw, nh), interpolation=cv2.INTER_LINEAR)
    # nearest: the source pixel whose area [i − 0.5, i + 0.5) holds the target pixel's centre
    rows = np.minimum(((np.arange(nh) + 0.5) / sy).astype(np.intp), h - 1)[:, None]
    cols = np.minimum(((np.arange(nw) + 0.5) / sx).astype(np.intp), w - 1)[None, :]
    depth, valid = sample["depth"][rows, cols], sample["valid"][rows, cols]
    K = np.array(sample["K"], dtype=np.float64)
    A = np.array([[sx, 0.0, (sx - 1) / 2], [0.0, sy, (sy - 1) / 2], [0.0, 0.0, 1.0]])  # pixel-centre rescaling
    K_new = A @ K
    if keep_focal:
        K_new[0, :2], K_new[1, :2] = K[0, :2], K[1, :2]
        depth = np.where(valid, depth / np.float32(factor), np.float32(0)).astype(np.float32)
    return _replace(sample, image=image, depth=depth, valid=valid, K=K_new)


def rotate(sample: Sample, angle_deg: float) -> Sample:
    """Camera roll: rotate the image by ``angle_deg`` (counter-clockwise on screen) about (cx, cy).

    K and depth values are unchanged; pixels rotated in from outside are invalid and black.
    """
    h, w = _size(sample)
    K = np.array(sample["K"], dtype=np.float64)
    fx, skew, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    if skew != 0:
        raise ValueError("rotate needs a K without skew")
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    # target → source in pixels: p − c = F Mᵀ F⁻¹ (p' − c), with M = [[c, s], [−s, c]] on normalised coords
    a = np.array([[c, -s * fx / fy], [s * fy / fx, c]])
    inverse = np.hstack([a, (np.array([cx, cy]) - a @ np.array([cx, cy]))[:, None]])
    image = cv2.warpAffine(
        sample["image"],
        inverse,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    u, v = np.arange(w, dtype=np.float64)[None, :], np.arange(h, dtype=np.float64)[:, None]
    su = np.rint(inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2]).astype(np.intp)
    sv = np.rint(inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2]).astype(np.intp)
    inside = (su >= 0) & (su < w) & (sv >= 0) & (sv < h)
    su, sv = np.clip(su, 0, w - 1), np.clip(sv, 0, h - 1)
    valid = sample["valid"][sv, su] & inside
    depth = np.where(valid, sample["depth"][sv, su], np.float32(0)).astype(np.float32)
    return _replace(sample, image=image, depth=depth, valid=valid, K=K)


def hflip(sample: Sample) -> Sample:
    """Mirror left-right: ``cx' = (W − 1) − cx``; the scene is mirrored (X → −X)."""
    _, w = _size(sample)
    K = np.array(sample["K"], dtype=np.float64)
    K[0, 2] = (w - 1) - K[0, 2]
    K[0, 1] = -K[0, 1]
    return _replace(
        sample,
        image=sample["image"][:, ::-1].copy(),
        depth=sample["depth"][:, ::-1].copy(),
        valid=sample["valid"][:, ::-1].copy(),
        K=K,
    )


# --------------------------------------------------------------------------- photometric ops

_LUMA = np.array([0.299, 0.587, 0.114])


def color_jitter(
    sample: Sample,
    *,
    brightness: float = 1.0,
    contrast: float = 1.0,
    saturation: float = 1.0,
    hue_deg: float = 0.0,
    gamma: float = 1.0,
) -> Sample:
    """Photometric change of the image only, applied in this order on RGB in [0, 1]:

    gamma ``x**gamma``; brightness ``x·b``; contrast (blend with the mean luma, factor c);
    saturation (blend with each pixel's luma, factor s); hue-ish (rotation by ``hue_deg`` about the
    grey axis of the RGB cube). Factors of 1 (and 0°) leave the image as it is.
    """
    image = sample["image"]
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.float32)
    x = lut[image].reshape(-1, 3) / np.float32(255)
    theta = math.radians(hue_deg)
    k = np.full(3, 1 / math.sqrt(3))
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    hue = math.cos(theta) * np.eye(3) + math.sin(theta) * cross + (1 - math.cos(theta)) * np.outer(k, k)
    sat = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), _LUMA)
    mean_luma = float(x.mean(0) @ _LUMA)
    # hue and saturation fix grey, so the contrast offset (a grey) passes through them unchanged
    matrix = (contrast * brightness * hue @ sat).astype(np.float32)
    out = x @ matrix.T + np.float32((1 - contrast) * brightness * mean_luma)
    out = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8).reshape(image.shape)
    return _replace(sample, image=out)


def permute_channels(sample: Sample, order: Sequence[int]) -> Sample:
    """The image's colour channels in ``order`` (a permutation of 0, 1, 2)."""
    if sorted(order) != [0, 1, 2]:
        raise ValueError(f"order must be a permutation of (0, 1, 2), got {tuple(order)}")
    return _replace(sample, image=np.ascontiguousarray(sample["image"][..., list(order)]))


# --------------------------------------------------------------------------- random pipeline


class Compose:
    """Apply callables in turn: ``Compose([Augment(...), to_tensors])`` is a dataset transform."""

    def __init__(self, transforms: Iterable[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Any) -> Any:
        for transform in self.transforms:
            sample = transform(sample)
        return sample


class Augment:
    """Random joint augmentation, configured by keywords; draws from a numpy ``Generator``.

    Order: scale (factor uniform in ``scale``, raised if needed so the image still covers
    ``size``) → rotation (angle uniform in ±``rotate_deg``) → crop to ``size = (h, w)`` (uniform
    position) → horizontal flip (probability ``flip``) → colour jitter (brightness, contrast and
    saturation factors uniform in 1 ± value, hue uniform in ±``hue_deg``, gamma uniform in
    1 ± ``gamma``) → channel permutation (probability ``channel_shuffle``). Disabled ops draw
    nothing.

    Deterministic from ``seed`` (or pass ``rng``). DataLoader workers each get a copy of the same
    generator state: call ``reseed(seed + worker_id)`` in a ``worker_init_fn`` for distinct streams.
    """

    def __init__(
        self,
        *,
        size: tuple[int, int] | None = None,
        scale: tuple[float, float] | None = None,
        keep_focal: bool = False,
        rotate_deg: float = 0.0,
        flip: float = 0.5,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue_deg: float = 0.0,
        gamma: float = 0.0,
        channel_shuffle: float = 0.0,
        seed: int | None = 0,
        rng: np.random.Generator | None = None,
    ) -> None:
        if scale is not None and not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        if not 0 <= flip <= 1 or not 0 <= channel_shuffle <= 1:
            raise ValueError("flip and channel_shuffle are probabilities in [0, 1]")
        if max(brightness, contrast, saturation, gamma) >= 1 or min(brightness, contrast, saturation, gamma) < 0:
            raise ValueError("brightness, contrast, saturation and gamma must be in [0, 1)")
        self.size, self.scale, self.keep_focal, self.rotate_deg = size, scale, keep_focal, rotate_deg
        self.flip, self.channel_shuffle = flip, channel_shuffle
        self.brightness, self.contrast, self.saturation, self.hue_deg, self.gamma = (
            brightness,
            contrast,
            saturation,
            hue_deg,
            gamma,
        )
        self.rng = rng if rng is not None else np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, sample: Sample) -> Sample:
        rng = self.rng
        if self.scale is not None:
            factor = float(rng.uniform(*self.scale))
            if self.size is not None:
                h, w = _size(sample)
                factor = max(factor, self.size[0] / h, self.size[1] / w)
            if factor != 1.0:
                sample = scale(sample, factor, keep_focal=self.keep_focal)
        if self.rotate_deg:
            sample = rotate(sample, float(rng.uniform(-self.rotate_deg, self.rotate_deg)))
        if self.size is not None:
            sample = random_crop(sample, self.size, rng)
        if self.flip and rng.random() < self.flip:
            sample = hflip(sample)
        if self.brightness or self.contrast or self.saturation or self.hue_deg or self.gamma:
            b, c, s, g = (
                float(rng.uniform(1 - x, 1 + x)) for x in (self.brightness, self.contrast, self.saturation, self.gamma)
            )
            hue = float(rng.uniform(-self.hue_deg, self.hue_deg))
            sample = color_jitter(sample, brightness=b, contrast=c, saturation=s, hue_deg=hue, gamma=g)
        if self.channel_shuffle and rng.random() < self.channel_shuffle:
            sample = permute_channels(sample, rng.permutation(3).tolist())
        return sample


def to_tensors(sample: Sample) -> dict[str, Any]:
    """Torch tensors: ``image`` (3, H, W) float32 in [0, 1], ``depth`` (1, H, W) float32 with 0
    where invalid, ``valid`` (1, H, W) bool, ``K`` (3, 3) float32; ``name`` kept, other keys dropped.

    ``valid`` is the sample's mask and'ed with finite, positive depth.
    """
    depth = np.asarray(sample["depth"], dtype=np.float32)
    valid = np.asarray(sample["valid"], dtype=bool) & np.isfinite(depth) & (depth > 0)
    image = torch.from_numpy(np.ascontiguousarray(sample["image"])).permute(2, 0, 1).float().div_(255)
    out = {
        "image": image.contiguous(),
        "depth": torch.from_numpy(np.where(valid, depth, np.float32(0))[None]),
        "valid": torch.from_numpy(np.ascontiguousarray(valid)[None]),
        "K": torch.from_numpy(np.asarray(sample["K"], dtype=np.float32).copy()),
    }
    if "name" in sample:
        out["name"] = sample["name"]
    return out
