"""Depth fused over time with the camera's motion: a static wall stops shimmering.

A network predicts every pixel afresh each frame, so the depth of a static surface changes by a few
per cent from frame to frame, which trackers and costmaps see as flicker. With the camera's motion
since the last frame (odometry, or none for a fixed camera), each pixel's new depth is compared
with what the fused depth so far says along the same ray, and the two are averaged where they
agree:

    D = (w · D_past + Z) / (w + 1),   w ← min(w + 1, max_weight)

``max_weight`` bounds the memory (in steady state an exponential average of about that many
frames). Where they disagree by more than ``agreement`` (relative), or the past has nothing there,
the new depth replaces the past with weight 1: a moving object, a disocclusion, a changed scale.

The association is projective, as in KinectFusion: each pixel is back-projected with its new depth,
moved into the previous camera, and the fused depth is read at the pixel it lands on; that past
surface point, moved back, gives its depth along the current pixel's ray. The current depth
chooses which surface is compared, so no z-buffer is needed, and a surface the previous frame saw
only behind a foreground object lands on the foreground and disagrees. Every step is one numpy
operation over the image; the cameras are taken as pinholes (K).

Poses are ``world_from_camera`` (4×4). A step larger than ``max_translation`` metres or
``max_rotation`` degrees, a missing pose, or another camera resets the state, and says why.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from depth_estimation_ros.core.camera import CameraModel

MODES = ("none", "odometry", "static")  # "none", not "off": YAML and ros2 -p read off as false


@dataclass(frozen=True)
class FusionStep:
    """What the last frame did: the share of its depth pixels fused with the past (0 after a reset),
    and why the state was reset (empty if it was not)."""

    fused: float
    reset: str = ""


class DepthFusion:
    """Running fusion of metric depth over frames (see the module docstring)."""

    def __init__(self, *, agreement: float = 0.05, max_weight: float = 8.0, max_translation: float = 0.5,
                 max_rotation: float = 15.0):  # fmt: skip
        if not (0 < agreement < 1 and max_weight >= 1 and max_translation > 0 and max_rotation > 0):
            raise ValueError(f"fusion needs 0 < agreement < 1, max_weight ≥ 1 and positive step limits; got "
                             f"{agreement}, {max_weight}, {max_translation}, {max_rotation}")  # fmt: skip
        self.agreement, self.max_weight = agreement, max_weight
        self.max_translation, self.max_rotation = max_translation, max_rotation
        self.last = FusionStep(0.0, "no frame yet")
        self.resets: Counter[str] = Counter()  # frames so far that reset the state, by reason
        self.fused_frames = 0  # frames fused with the past
        self._depth: np.ndarray | None = None
        self._weight: np.ndarray | None = None
        self._camera: CameraModel | None = None
        self._pose: np.ndarray | None = None

    def _restart(self, depth: np.ndarray, camera: CameraModel, pose: np.ndarray | None, why: str,
                 kind: str = "") -> np.ndarray:  # fmt: skip
        """Start over from this frame; ``why`` is said, ``kind`` (default ``why``) counted."""
        self._depth, self._camera, self._pose = depth.copy(), camera, pose
        self._weight = np.where(np.isfinite(depth), np.float32(1), np.float32(0))
        self.last = FusionStep(0.0, why)
        self.resets[kind or why] += 1
        return depth

    def _step_too_large(self, step: np.ndarray) -> str:
        moved = float(np.linalg.norm(step[:3, 3]))
        turned = math.degrees(math.acos(min(1.0, max(-1.0, (np.trace(step[:3, :3]) - 1) / 2))))
        if moved > self.max_translation or turned > self.max_rotation:
            return (f"odometry step of {moved:.2f} m and {turned:.1f}° is beyond {self.max_translation:g} m or "
                    f"{self.max_rotation:g}°")  # fmt: skip
        return ""

    def __call__(self, depth: np.ndarray, camera: CameraModel, pose: np.ndarray | None) -> np.ndarray:
        """The fused depth (H, W) float32 for this frame's metric ``depth`` (NaN = none) seen by
        ``camera`` at ``pose`` (``world_from_camera``; the identity for a fixed camera)."""
        depth = np.asarray(depth, np.float32)
        if pose is None:
            return self._restart(depth, camera, None, "no pose for this frame")
        if self._depth is None or self._weight is None or self._pose is None:
            return self._restart(depth, camera, pose, "first frame" if self._depth is None else "pose again")
        if self._camera is None or not camera.isclose(self._camera) or depth.shape != self._depth.shape:
            return self._restart(depth, camera, pose, "another camera (size or intrinsics)")
        past_from_now = np.linalg.inv(self._pose) @ pose
        if why := self._step_too_large(past_from_now):
            return self._restart(depth, camera, pose, why, "odometry step")
        past, weight = self._warp(depth, camera, past_from_now, self._depth, self._weight)
        with np.errstate(invalid="ignore"):
            agree = np.abs(past - depth) <= self.agreement * depth  # False where either is NaN
        fused = np.where(agree, (weight * past + depth) / (weight + 1), depth).astype(np.float32)
        self._weight = np.where(agree, np.minimum(weight + 1, self.max_weight), np.isfinite(depth)).astype(np.float32)
        self._depth, self._pose = fused, pose
        valid = int(np.isfinite(depth).sum())
        self.last = FusionStep(float(agree.sum()) / valid if valid else 0.0)
        self.fused_frames += 1
        return fused

    @staticmethod
    def _warp(depth: np.ndarray, camera: CameraModel, past_from_now: np.ndarray, past_depth: np.ndarray,
              past_weight: np.ndarray):  # fmt: skip
        """The past fused depth along each current pixel's ray (NaN where none), and its weight."""
        H, W = depth.shape
        x, y = camera.ray_grid()
        R, t = past_from_now[:3, :3].astype(np.float32), past_from_now[:3, 3].astype(np.float32)
        # this frame's points in the past camera
        px = (R[0, 0] * x + R[0, 1] * y + R[0, 2]) * depth + t[0]
        py = (R[1, 0] * x + R[1, 1] * y + R[1, 2]) * depth + t[1]
        pz = (R[2, 0] * x + R[2, 1] * y + R[2, 2]) * depth + t[2]
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.floor(camera.fx * px / pz + camera.cx + 0.5)
            v = np.floor(camera.fy * py / pz + camera.cy + 0.5)
            inside = (pz > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        index = np.where(inside, v * W + u, 0).astype(np.intp)
        seen = past_depth.ravel()[index]
        weight = np.where(inside, past_weight.ravel()[index], 0).astype(np.float32)
        # that past surface point, back in this camera: its depth along (nearly) this pixel's ray
        rays_x, rays_y = (u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy
        Rt = R.T
        back_z = Rt[2, 0] * (rays_x * seen - t[0]) + Rt[2, 1] * (rays_y * seen - t[1]) + Rt[2, 2] * (seen - t[2])
        return np.where(inside & (weight > 0), back_z, np.float32(np.nan)).astype(np.float32), weight
