"""A fixed transform between two frames, as a robot's parameters give it: a LiDAR in the camera's
optical frame, the camera in the odometry's body frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def _rotation(quaternion) -> np.ndarray:
    x, y, z, w = (float(v) for v in quaternion)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not (math.isfinite(norm) and abs(norm - 1) < 1e-3):
        raise ValueError(f"rotation must be a unit quaternion (x, y, z, w), got {list(quaternion)} (norm {norm:.6g})")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


@dataclass(frozen=True)
class Mounting:
    """Where one frame is in another: ``p_outer = R(rotation) · p + translation``, the rotation a unit
    quaternion (x, y, z, w) as tf2 writes it (``tf2_echo OUTER INNER`` prints this transform). The
    default: the two frames are the same."""

    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    R: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        t = np.asarray(self.translation, np.float64)
        if t.shape != (3,) or not np.isfinite(t).all():
            raise ValueError(f"translation must be three finite metres (x, y, z), got {list(self.translation)}")
        if np.asarray(self.rotation).shape != (4,):
            raise ValueError(f"rotation must be a quaternion (x, y, z, w), got {list(self.rotation)}")
        object.__setattr__(self, "R", _rotation(self.rotation))

    @classmethod
    def from_text(cls, text: str) -> Mounting | None:
        """``"x y z qx qy qz qw"`` (metres and a unit quaternion, ``static_transform_publisher``'s
        order), or None for an empty string (the same frame)."""
        if not text.strip():
            return None
        try:
            values = [float(v) for v in text.replace(",", " ").split()]
        except ValueError:
            values = []
        if len(values) != 7:
            raise ValueError(f"{text!r} must be seven numbers: x y z qx qy qz qw (metres, a unit quaternion)")
        return cls(tuple(values[:3]), tuple(values[3:]))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Points (N, 3) of the inner frame in the outer one (a LiDAR's in the camera's optical frame)."""
        return points @ self.R.T + np.asarray(self.translation)

    @property
    def matrix(self) -> np.ndarray:
        """The 4×4 homogeneous transform outer_from_inner."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.R, self.translation
        return m


def quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """The unit quaternion (x, y, z, w) of the rotation matrix ``R`` (Shepperd's method)."""
    m = np.asarray(R, np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2 * math.sqrt(trace + 1)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * math.sqrt(1 + m[i, i] - m[j, j] - m[k, k])
        v = np.empty(3)
        v[i], v[j], v[k] = s / 4, (m[j, i] + m[i, j]) / s, (m[k, i] + m[i, k]) / s
        q = (*v, (m[k, j] - m[j, k]) / s)
    return tuple(float(x) for x in q)  # type: ignore[return-value]
