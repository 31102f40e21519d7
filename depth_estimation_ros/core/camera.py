"""Pinhole camera model that stays exact under resize, crop, letterbox and decimation.

All intrinsics arithmetic of the project lives here.

Pixel-centre convention: integer pixel coordinates ``(u, v)`` are pixel *centres*; an image of
width W covers ``[−0.5, W − 0.5]``. Hence

* resize by ``s`` (area mapping, what cv2.resize does): ``f' = f·s``, ``c' = (c + 0.5)·s − 0.5``;
* crop at ``(x0, y0)``: ``c' = c − x0``;
* decimation by ``n`` (strided sampling ``image[::n, ::n]``, no averaging): pixel ``u'`` is pixel
  ``n·u'`` of the source, so ``f' = f/n``, ``c' = c/n``;
* letterbox: one scale for both axes, then a shift by the padding.

K and P are transformed together (P's fourth column, ``−f·baseline`` for stereo, scales with f).
As in depth_image_proc, back-projection uses the projection matrix P.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from depth_estimation_ros.core.errors import MAX_IMAGE_SIDE
from depth_estimation_ros.core.files import load_yaml_mapping
from depth_estimation_ros.core.validation import integer, numbers, shown, text

MAX_DISTORTION = 14  # coefficients of OpenCV's largest model (rational + thin prism + tilted)
# Focal lengths and principal points within this factor of the image's larger side: fields of
# view from about 0.1° to 179.9°, principal points up to that far outside the image.
PLAUSIBLE_RATIO = 1000.0


def _matrix(values, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.size != shape[0] * shape[1]:
        raise ValueError(f"{name} must have {shape[0]}x{shape[1]} = {shape[0] * shape[1]} values, got {array.size}")
    array = array.reshape(shape)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


@dataclass(frozen=True)
class Letterbox:
    """Where the scaled image sits inside a letterboxed network input."""

    scale: float
    pad_x: int
    pad_y: int
    inner_width: int
    inner_height: int


@dataclass(frozen=True, eq=False)
class CameraModel:
    """A pinhole camera: image size, K (3×3), P (3×4), distortion and the frame it describes.

    Mirrors sensor_msgs/CameraInfo (``D``, ``distortion_model``, ``R``, ``frame_id``).
    """

    width: int
    height: int
    K: np.ndarray
    P: np.ndarray | None = None
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = "plumb_bob"
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    frame_id: str = ""

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 < value <= MAX_IMAGE_SIDE:
                raise ValueError(f"camera {name} must be a positive integer up to {MAX_IMAGE_SIDE}, got {value!r}")
            object.__setattr__(self, name, int(value))
        K = _matrix(self.K, (3, 3), "K")
        P = np.hstack([K, np.zeros((3, 1))]) if self.P is None else _matrix(self.P, (3, 4), "P")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "P", P)
        D = np.asarray(self.D, dtype=np.float64).ravel()
        if not np.isfinite(D).all():
            raise ValueError(f"D must be finite, got {D.tolist()}")
        if D.size > MAX_DISTORTION:
            raise ValueError(f"D must be at most {MAX_DISTORTION} numbers, got {D.size}")
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "R", _matrix(self.R, (3, 3), "R"))
        side = max(self.width, self.height)
        for name, matrix in (("K", K), ("P", P)):
            fx, fy = matrix[0, 0], matrix[1, 1]
            if not (fx > 0 and fy > 0):
                raise ValueError(f"camera {name} must have positive focal lengths, got fx={fx}, fy={fy}")
            # refused at the door: intrinsics of 1e30 or 1e-30 would turn into depths of 1e30 m
            far = side * PLAUSIBLE_RATIO
            bounds = {"fx": (fx, side / PLAUSIBLE_RATIO, far), "fy": (fy, side / PLAUSIBLE_RATIO, far),
                      "cx": (matrix[0, 2], -far, far), "cy": (matrix[1, 2], -far, far)}  # fmt: skip
            for axis, (value, low, high) in bounds.items():
                if not low <= value <= high:
                    raise ValueError(f"camera {name}: {axis}={value:g} px is not plausible for a {self.width}x"
                                     f"{self.height} image (expected {low:g} to {high:g} px; a focal length in "
                                     f"that range is a field of view between 0.1° and 179.9°)")  # fmt: skip

    @classmethod
    def from_intrinsics(
        cls, fx: float, fy: float, cx: float, cy: float, width: int, height: int, frame_id: str = ""
    ) -> CameraModel:
        return cls(width, height, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], frame_id=frame_id)

    @classmethod
    def from_dict(cls, data: dict, source: str = "camera info") -> CameraModel:
        """From the ROS camera_calibration YAML layout (``image_width``, ``camera_matrix`` …); each
        field is type- and range-checked, errors name ``source`` and the field."""
        for key in ("image_width", "image_height", "camera_matrix"):
            if key not in data:
                raise ValueError(f"{source}: missing {key!r} (expected ROS camera_calibration YAML)")

        def matrix(key: str, shape: tuple[int, int] | None) -> list[float] | None:
            """A ``{rows, cols, data}`` entry (or a bare list) as a flat list of finite numbers;
            ``shape`` None: any length up to MAX_DISTORTION (the distortion coefficients)."""
            entry, where = data.get(key), f"{source}: {key}"
            if entry is None:
                return None
            values, count = entry, None if shape is None else shape[0] * shape[1]
            if isinstance(entry, dict):
                values, where = entry.get("data"), f"{where}.data"
                rows = integer(entry.get("rows", shape[0] if shape else 1), f"{source}: {key}.rows", 0)
                cols = integer(entry.get("cols", shape[1] if shape else len(values or [])), f"{source}: {key}.cols", 0)
                if shape is not None and (rows, cols) != shape:
                    raise ValueError(f"{source}: {key}: expected {shape[0]} rows and {shape[1]} cols, got "
                                     f"{rows}x{cols}")  # fmt: skip
                count = rows * cols
            if isinstance(values, list) and values and all(isinstance(row, list) for row in values):
                values = [v for row in values for v in row]  # rows given as nested lists
            return numbers(values, where, count, MAX_DISTORTION if shape is None else None)

        if data["camera_matrix"] is None:
            raise ValueError(f"{source}: camera_matrix: expected 9 numbers (3x3), got None")
        distortion = data.get("distortion_model") or "plumb_bob"
        try:
            return cls(
                width=integer(data["image_width"], f"{source}: image_width", 1, MAX_IMAGE_SIDE),
                height=integer(data["image_height"], f"{source}: image_height", 1, MAX_IMAGE_SIDE),
                K=matrix("camera_matrix", (3, 3)),
                P=matrix("projection_matrix", (3, 4)),
                D=matrix("distortion_coefficients", None) or [],
                distortion_model=text(distortion, f"{source}: distortion_model"),
                R=matrix("rectification_matrix", (3, 3)) or np.eye(3),
                frame_id=text(data.get("frame_id") or "", f"{source}: frame_id"),
            )
        except ValueError as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(source) else f"{source}: {message}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> CameraModel:
        data = load_yaml_mapping(path, "camera info file (ROS camera_calibration YAML)")
        return cls.from_dict(data, source=shown(path))

    def to_dict(self) -> dict:
        """The ROS camera_calibration YAML layout (round-trips through :meth:`from_dict`)."""

        def entry(m: np.ndarray) -> dict:
            return {"rows": m.shape[0], "cols": m.shape[1], "data": m.ravel().tolist()}

        return {
            "image_width": self.width,
            "image_height": self.height,
            "frame_id": self.frame_id,
            "camera_matrix": entry(self.K),
            "distortion_model": self.distortion_model,
            "distortion_coefficients": entry(self.D.reshape(1, -1)),
            "rectification_matrix": entry(self.R),
            "projection_matrix": entry(self.P),
        }

    # Back-projection intrinsics, from P as depth_image_proc does.
    @property
    def fx(self) -> float:
        return float(self.P[0, 0])

    @property
    def fy(self) -> float:
        return float(self.P[1, 1])

    @property
    def cx(self) -> float:
        return float(self.P[0, 2])

    @property
    def cy(self) -> float:
        return float(self.P[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order OpenCV uses."""
        return self.width, self.height

    def __eq__(self, other) -> bool:
        if not isinstance(other, CameraModel):
            return NotImplemented
        return (
            self.size == other.size
            and self.distortion_model == other.distortion_model
            and self.frame_id == other.frame_id
            and all(np.array_equal(getattr(self, m), getattr(other, m)) for m in ("K", "P", "D", "R"))
        )

    def isclose(self, other: CameraModel, tol: float = 1e-9) -> bool:
        return self.size == other.size and all(
            np.allclose(getattr(self, m), getattr(other, m), atol=tol, rtol=0) for m in ("K", "P", "D", "R")
        )

    def _affine(self, sx: float, sy: float, tx: float, ty: float, width: int, height: int) -> CameraModel:
        """Apply u' = sx·u + tx, v' = sy·v + ty to the image plane."""
        A = np.array([[sx, 0, tx], [0, sy, ty], [0, 0, 1]])
        return replace(self, width=width, height=height, K=A @ self.K, P=A @ self.P)

    def check_image(self, shape: tuple[int, ...], what: str = "image") -> None:
        """Raise if an image of ``shape`` (H, W, …) is not the size this camera describes."""
        if tuple(shape[:2]) != (self.height, self.width):
            raise ValueError(
                f"{what} is {shape[1]}x{shape[0]} (WxH) but the camera describes {self.width}x{self.height}"
            )

    def resize(self, width: int, height: int) -> CameraModel:
        """The camera of the image resized (area mapping) to ``width``×``height``."""
        sx, sy = width / self.width, height / self.height
        return self._affine(sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5, width, height)

    def resize_corners(self, width: int, height: int) -> CameraModel:
        """The camera of the image resized with corner pixels aligned (``align_corners=True``): pixel
        centres 0 and W − 1 map onto 0 and W' − 1, so ``f' = f·s``, ``c' = c·s``, s = (W' − 1)/(W − 1)."""
        sx = (width - 1) / max(self.width - 1, 1)
        sy = (height - 1) / max(self.height - 1, 1)
        return self._affine(sx, sy, 0.0, 0.0, width, height)

    def crop(self, x0: int, y0: int, width: int, height: int) -> CameraModel:
        """The camera of ``image[y0:y0+height, x0:x0+width]``; offsets may be negative (padding)."""
        return self._affine(1.0, 1.0, -x0, -y0, width, height)

    def decimate(self, n: int) -> CameraModel:
        """The camera of ``image[::n, ::n]`` (strided sampling)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"decimation must be a positive integer, got {n!r}")
        if n == 1:
            return self
        return self._affine(1 / n, 1 / n, 0.0, 0.0, math.ceil(self.width / n), math.ceil(self.height / n))

    def flip_horizontal(self) -> CameraModel:
        """The camera of the mirrored image ``image[:, ::-1]``: pixel u becomes W − 1 − u, so
        cx' = W − 1 − cx (the focal lengths stay positive: it describes the mirrored scene)."""
        K, P = self.K.copy(), self.P.copy()
        K[0, 2] = self.width - 1 - K[0, 2]
        P[0, 2] = self.width - 1 - P[0, 2]
        return replace(self, K=K, P=P)

    def letterbox(self, width: int, height: int) -> tuple[CameraModel, Letterbox]:
        """Fit the image into ``width``×``height`` with one scale, centred, padding the rest."""
        scale = min(width / self.width, height / self.height)
        inner_w, inner_h = max(1, round(self.width * scale)), max(1, round(self.height * scale))
        box = Letterbox(scale, (width - inner_w) // 2, (height - inner_h) // 2, inner_w, inner_h)
        camera = self.resize(inner_w, inner_h).crop(-box.pad_x, -box.pad_y, width, height)
        return camera, box

    def ray_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel ``(u − cx)/fx`` (1, W) and ``(v − cy)/fy`` (H, 1), float32, for back-projection."""
        u = (np.arange(self.width, dtype=np.float64) - self.cx) / self.fx
        v = (np.arange(self.height, dtype=np.float64) - self.cy) / self.fy
        return u.astype(np.float32)[None, :], v.astype(np.float32)[:, None]

    def rectified_rays(self, u, v) -> tuple[np.ndarray, np.ndarray]:
        """Rays ``(x/z, y/z)`` (float64) of pixels ``(u, v)`` with the lens distortion removed and R
        applied, in P's frame: image_geometry's ``rectifyPoint`` then ``projectPixelTo3dRay``.
        Without distortion this is ``((u − cx)/fx, (v − cy)/fy)`` from P."""
        u, v = np.broadcast_arrays(np.asarray(u, np.float64), np.asarray(v, np.float64))
        if self.D.any():
            points = np.stack([u.ravel(), v.ravel()], -1)[:, None]
            if self.distortion_model == "equidistant":
                rect = cv2.fisheye.undistortPoints(points, self.K, self.D[:4], R=self.R, P=self.P[:, :3])
            else:  # OpenCV takes 4, 5, 8, 12 or 14 coefficients; the missing ones are zero
                n = next(n for n in (4, 5, 8, 12, 14) if n >= self.D.size)
                D = np.pad(self.D, (0, n - self.D.size))
                rect = cv2.undistortPoints(points, self.K, D, R=self.R, P=self.P[:, :3])
            u, v = rect[:, 0, 0].reshape(u.shape), rect[:, 0, 1].reshape(v.shape)
        return (u - self.cx) / self.fx, (v - self.cy) / self.fy
