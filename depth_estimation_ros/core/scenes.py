"""Procedural RGB-D scenes from a small vectorised ray caster, for tests and demonstrations.

No dataset can be downloaded everywhere, so this module renders indoor rooms and street canyons
with exact metric depth. Every pixel's ray is intersected analytically, all pixels at once in
numpy, with a handful of boxes (yaw-rotated about the vertical); the nearest hit wins, so
occlusion is exact. Floors, walls and the ground are boxes too (a room is a box seen from inside,
the ground the top face of a very large slab), so one primitive serves everything.

Camera (pixel-centre convention, as everywhere in the project): pixel ``(u, v)`` integer indices
are pixel centres, ``K = [[f, 0, cx], [0, f, cy], [0, 0, 1]]`` with ``f = (W / 2) / tan(fov / 2)``
(``fov`` horizontal), ``cx = (W − 1) / 2``, ``cy = (H − 1) / 2``; the ray of pixel ``(u, v)`` is
``((u − cx) / f, (v − cy) / f, 1)`` in camera coordinates (x right, y down, z forward), and the
depth is the hit point's ``z`` (along the optical axis, not the ray length). World coordinates:
x right, y forward, z up, the floor or ground at ``z = 0``.

Monocular cues present: perspective (floor and ground recede to a horizon), texture gradients
(textures live in world/surface coordinates: tiles, planks, stripes, windows, road markings, noise;
their contrast fades once a pixel covers a pattern period, as a lens would blur it), occlusion
(furniture on floors, cars in front of façades), shading (Lambertian: a ceiling lamp and a fill
light indoors, the sun and sky outdoors, plus ambient), atmospheric haze outdoors. No shadows, no
reflections, no anti-aliasing of geometry edges.

Kinds and their depth ranges (default field of view; by construction, see ``DEPTH_RANGE``):

- ``indoor``: a closed room 3–8 m wide, 3–10 m deep, 2.4–3.2 m high, 2–6 pieces of furniture
  (cabinets, tables with legs, sofas, crates); camera 1.0–1.7 m high, pitch −15…+5°, roll ±4°,
  yaw ±15°. Every pixel hits something: all depth is valid, 0.5–10 m.
- ``street``: road with markings and sidewalks between rows of buildings, cars and poles. Sky
  (no hit) and anything farther than 80 m are invalid (depth 0, ``valid`` False) but still drawn.
  Camera 1.4–1.9 m high in a lane, pitch −5…+2°, roll ±2°, yaw ±6°. Valid depth 1–80 m.

Samples follow the project's sample contract (``image``, ``depth``, ``valid``, ``K``, ``name``)
plus ``meta``: the scene as rendered (``kind``, ``seed``, ``fov_deg``, ``camera_height`` in metres,
``pitch_deg``/``roll_deg``/``yaw_deg``, ``floor_plane``: ``(a, b, c, d)`` with ``a x + b y + c z + d = 0``
for floor/ground points in camera coordinates, ``world_from_camera``: 4×4). Augmentation does not
update ``meta``. With ``layers=True`` a sample also holds ``layers``: ``surface`` (H×W uint8, see
``SURFACES``), ``albedo`` (H×W×3 float32, linear) and ``shading`` (H×W float32).

The training side wraps the renderer as a dataset (``training.datasets.synthetic.SyntheticDataset``);
the runtime uses it directly for the demo's sequence and int8 calibration frames.

Cost: about 20 ms (indoor) and 25–30 ms (street) per 256×352 frame on one CPU core. Boxes are only
intersected inside the image rectangle their clipped, projected corners bound, which is exact.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

KINDS = ("indoor", "street")
DEFAULT_FOV_DEG = {"indoor": 62.0, "street": 80.0}  # horizontal; about NYU's Kinect and KITTI's camera
DEPTH_RANGE = {"indoor": (0.5, 10.0), "street": (1.0, 80.0)}  # valid depth, metres, at the default fov
STREET_MAX_RANGE = 80.0  # street hits beyond this depth are invalid (drawn, but no ground truth)
SURFACES = ("none", "floor", "wall", "ceiling", "object")  # ``layers["surface"]`` values are indices
NONE, FLOOR, WALL, CEILING, OBJECT = range(5)

_EPS = 1e-4


def intrinsics(height: int, width: int, fov_deg: float) -> np.ndarray:
    """3×3 pinhole K (float64) of a ``width``×``height`` image with horizontal field of view ``fov_deg``.

    Square pixels, principal point at the image centre in the pixel-centre convention.
    """
    if not 0 < fov_deg < 180:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    f = (width / 2) / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


# --------------------------------------------------------------------------- procedural textures


def _make_noise_table(n: int = 256, seed: int = 7) -> np.ndarray:
    """A tileable n×n fractal value-noise table, zero mean and unit standard deviation (fixed forever)."""
    rng = np.random.default_rng(seed)
    table = np.zeros((n, n))
    amplitude = 1.0
    for cells in (4, 8, 16, 32, 64, 128):
        grid = rng.standard_normal((cells, cells))
        x = np.arange(n) * cells / n
        i0 = np.floor(x).astype(int)
        f = x - i0
        f = f * f * (3 - 2 * f)
        i1 = (i0 + 1) % cells
        rows = grid[i0] * (1 - f)[:, None] + grid[i1] * f[:, None]
        table += amplitude * (rows[:, i0] * (1 - f)[None] + rows[:, i1] * f[None])
        amplitude *= 0.65
    table -= table.mean()
    return (table / table.std()).astype(np.float32)


_NOISE = np.pad(_make_noise_table(), ((0, 1), (0, 1)), mode="wrap").ravel()  # 257×257: no wrap in lookups
_RANDOM = np.random.default_rng(11).random((256, 256)).astype(np.float32).ravel()  # per-cell random values
_GAUSS = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)  # byte → N(0, 1)


def _noise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bilinear lookup of the noise table at table coordinates (a, b) (period 256 in each)."""
    fa, fb = np.floor(a), np.floor(b)
    base = (fa.astype(np.int32) & 255) * 257 + (fb.astype(np.int32) & 255)
    fa, fb = a - fa, b - fb
    n00, n01 = _NOISE.take(base), _NOISE.take(base + 1)
    n10, n11 = _NOISE.take(base + 257), _NOISE.take(base + 258)
    top = n00 + (n01 - n00) * fb
    return top + (n10 + (n11 - n10) * fb - top) * fa


def _cell_random(ia: np.ndarray, ib: np.ndarray | int) -> np.ndarray:
    """A fixed random value in [0, 1) per integer cell (ia, ib), given as integral floats or ints."""
    ia = np.asarray(ia).astype(np.int32) & 255
    return _RANDOM.take(ia * 256 + (np.asarray(ib).astype(np.int32) & 255))


def _fade(footprint: np.ndarray, period: float) -> np.ndarray:
    """Contrast kept by a pattern of ``period`` metres when a pixel covers ``footprint`` metres."""
    return np.clip(2.0 - (4.0 / period) * footprint, 0.0, 1.0)


@dataclass
class _Material:
    """A procedural albedo in surface coordinates (u, v) in metres; colours are linear RGB."""

    pattern: str  # plain | tiles | checker | planks | stripes | windows | road
    colour: np.ndarray
    colour2: np.ndarray
    scale: float = 1.0  # pattern period, metres
    contrast: float = 0.2
    offset: tuple[float, float] = (0.0, 0.0)  # into the noise tables, so equal materials differ
    params: dict[str, float] = field(default_factory=dict)

    def albedo(self, u: np.ndarray, v: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """(n, 3) float32 albedo at surface points (u, v) seen with a pixel footprint (metres)."""
        s, (ou, ov), p = self.scale, self.offset, self.params
        grain = _noise(u * 4.0 + ou, v * 4.0 + ov) * _fade(footprint, 0.5)  # 25 cm features
        mix = None
        if self.pattern == "plain":
            shade = 1 + self.contrast * grain
        elif self.pattern in ("tiles", "checker"):
            iu, iv = np.floor(u / s), np.floor(v / s)
            keep = _fade(footprint, s)
            shade = 1 + keep * (self.contrast * (_cell_random(iu, iv) - 0.5) + 0.04 * grain)
            if self.pattern == "checker":
                mix = ((iu + iv) % 2) * keep + 0.5 * (1 - keep)
            else:  # grout lines of width params["grout"] in colour2
                gap = p["grout"] / s
                grout = ((u / s - iu) < gap) | ((v / s - iv) < gap)
                visible = _fade(footprint, 4 * p["grout"])
                mix = grout * visible + 2 * gap * (1 - visible)
        elif self.pattern == "planks":  # planks of width s across v, length params["length"] along u
            iv = np.floor(v / s)
            shifted = u / p["length"] + _cell_random(iv, 7)
            iu = np.floor(shifted)
            streaks = _noise(u * 1.5 + ou, v * 40.0 + ov) * _fade(footprint, 0.05)
            shade = 1 + _fade(footprint, s) * self.contrast * (_cell_random(iu, iv) - 0.5) + 0.12 * streaks
            seam = ((v / s - iv) < 0.04) | ((shifted - iu) < 0.01)
            mix = seam * _fade(footprint, 0.02) * 0.7
        elif self.pattern == "stripes":
            keep = _fade(footprint, s)
            mix = (np.floor(u / s) % 2) * keep + 0.5 * (1 - keep)
            shade = 1 + self.contrast * grain
        elif self.pattern == "windows":  # façade: a window per cell, u along the wall, v height
            floor_h, width = p["floor_height"], p["window_width"]
            iu, iv = np.floor(u / s), np.floor(v / floor_h)
            fu, fv = u / s - iu, v / floor_h - iv
            window = (np.abs(fu - 0.5) < width / 2) & (fv > 0.3) & (fv < 0.85)
            keep = _fade(footprint, 0.5 * min(s, floor_h))
            mix = window * keep + 0.55 * width * (1 - keep)
            lit = _cell_random(iu + 31 * ou, iv + 17 * ov)
            shade = 1 + self.contrast * grain + (window * keep) * np.where(lit > 0.9, 3.0, 1.2 * (lit - 0.5))
        elif self.pattern == "road":  # asphalt |u| < half_width with markings, paved sidewalks outside
            half, line = p["half_width"], 0.06
            au = np.abs(u)
            centre = (au < line) & ((v / 6.0 + ou) % 1.0 < 0.45)
            marks = (centre | (np.abs(au - (half - 0.3)) < line)) * _fade(footprint, 4 * line)
            paving = (_cell_random(np.floor(u / 0.5), np.floor(v / 0.5)) - 0.5) * _fade(footprint, 0.5)
            shade = 1 + self.contrast * grain + (au > half) * (1.2 + 0.3 * paving) + 3.5 * marks
        else:
            raise ValueError(f"unknown pattern {self.pattern!r}")
        shade = np.maximum(shade, 0.05, dtype=np.float32)[:, None]
        c1 = self.colour.astype(np.float32)
        if mix is None:
            return c1 * shade
        mix = mix.astype(np.float32)[:, None]
        return (c1 + (self.colour2.astype(np.float32) - c1) * mix) * shade


def _colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b]) ** 2.2  # sRGB-ish → linear


# --------------------------------------------------------------------------- geometry


@dataclass
class _Box:
    """An axis-aligned box in a frame at ``centre`` (world x, y) rotated by ``yaw`` about z.

    ``lo``/``hi`` are the corners in that frame. Faces are numbered 2·axis + (0 for lo, 1 for hi);
    ``materials`` and ``labels`` are per face. ``inside``: the camera is inside (a room) and sees
    the far side, with normals pointing inwards.
    """

    lo: np.ndarray
    hi: np.ndarray
    materials: list[_Material]
    labels: tuple[int, ...]
    centre: tuple[float, float] = (0.0, 0.0)
    yaw: float = 0.0
    inside: bool = False

    def corners(self) -> np.ndarray:
        return self.to_world(np.where(_CORNERS == 1, self.hi, self.lo))

    def to_world(self, local: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x, y = local[:, 0], local[:, 1]
        return np.stack([c * x - s * y + self.centre[0], s * x + c * y + self.centre[1], local[:, 2]], 1)

    def to_local(self, px, py, pz):
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        qx, qy = px - self.centre[0], py - self.centre[1]
        return c * qx + s * qy, -s * qx + c * qy, pz

    def intersect(self, origin: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """Ray parameter (= camera depth) of the first hit by the slab method, +inf where there is none."""
        ox, oy, oz = self.to_local(*origin)
        if self.yaw == 0:
            lx, ly = dx, dy
        else:
            c, s = np.float32(math.cos(self.yaw)), np.float32(math.sin(self.yaw))
            lx, ly = c * dx + s * dy, c * dy - s * dx
        near = far = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for d, o, lo, hi in zip((lx, ly, dz), (ox, oy, oz), self.lo, self.hi, strict=True):
                inv = 1.0 / d
                t0, t1 = np.float32(lo - o) * inv, np.float32(hi - o) * inv
                enter, leave = np.minimum(t0, t1), np.maximum(t0, t1)
                near = enter if near is None else np.maximum(near, enter, out=near)
                far = leave if far is None else np.minimum(far, leave, out=far)
            if self.inside:
                return np.where(far > _EPS, far, np.float32(np.inf))
            return np.where((near <= far) & (near > _EPS), near, np.float32(np.inf))

    def screen_rect(self, origin: np.ndarray, R: np.ndarray, K: np.ndarray, shape: tuple[int, int]):
        """Image rows and columns (slices) that can see the box, or None when it is out of view.

        The box is clipped to the half-space in front of the camera and its corners projected: the
        projection of a convex body lies within the hull of its projected vertices (exact bound).
        """
        h, w = shape
        if self.inside:
            return slice(0, h), slice(0, w)
        cam = (self.corners() - origin) @ R  # camera coordinates
        z = cam[:, 2]
        a, b = cam[_EDGES[:, 0]], cam[_EDGES[:, 1]]
        cross = (a[:, 2] - _EPS) * (b[:, 2] - _EPS) < 0
        s = (_EPS - a[cross, 2]) / (b[cross, 2] - a[cross, 2])
        pts = np.concatenate([cam[z >= _EPS], a[cross] + s[:, None] * (b[cross] - a[cross])])
        if len(pts) == 0:
            return None
        u = K[0, 0] * pts[:, 0] / pts[:, 2] + K[0, 2]
        v = K[1, 1] * pts[:, 1] / pts[:, 2] + K[1, 2]
        u0, u1 = max(math.floor(u.min()) - 1, 0), min(math.ceil(u.max()) + 2, w)
        v0, v1 = max(math.floor(v.min()) - 1, 0), min(math.ceil(v.max()) + 2, h)
        if u0 >= u1 or v0 >= v1:
            return None
        return slice(v0, v1), slice(u0, u1)


def _nearest_face(box: _Box, origin: np.ndarray, local: tuple[np.ndarray, ...]) -> np.ndarray | int:
    """Face index 2·axis + (1 for the hi side) of the box face nearest to each surface point.

    From outside, only faces turned towards the camera can be hit (for the ground slab: its top
    alone), so only those are compared; a single candidate is returned as a plain int.
    """
    lo, hi = box.lo.tolist(), box.hi.tolist()
    eye = box.to_local(*origin)
    candidates = []  # (face, coordinate of its plane along its axis)
    for axis in range(3):
        for side, bound in ((0, lo[axis]), (1, hi[axis])):
            if box.inside or (eye[axis] < bound if side == 0 else eye[axis] > bound):
                candidates.append((2 * axis + side, bound))
    if len(candidates) == 1:
        return candidates[0][0]
    face = np.full(local[0].shape, candidates[0][0], np.int8)
    best = np.abs(local[candidates[0][0] >> 1] - candidates[0][1])
    for index, bound in candidates[1:]:
        dist = np.abs(local[index >> 1] - bound)
        closer = dist < best
        face[closer] = index
        np.minimum(best, dist, out=best)
    return face


def _shade_box(box: _Box, origin: np.ndarray, P: np.ndarray, d: np.ndarray, t: np.ndarray, focal: float):
    """Albedo (n, 3), world normal (3, n) and surface label (n,) of the hits P (3, n) on ``box``.

    ``d``: the rays (3, n) and ``t`` their depths, for the texture footprint of a pixel.
    """
    local = box.to_local(P[0], P[1], P[2])
    face = _nearest_face(box, origin, local)
    axis = face >> 1
    sign = np.where(np.asarray(face & 1, bool) ^ box.inside, np.float32(1), np.float32(-1))
    nx, ny, nz = (np.where(axis == a, sign, np.float32(0)) for a in range(3))
    if box.yaw != 0:
        c, s = math.cos(box.yaw), math.sin(box.yaw)
        nx, ny = c * nx - s * ny, s * nx + c * ny
    normal = np.empty_like(P)
    normal[0], normal[1], normal[2] = nx, ny, nz
    lx, ly, lz = local
    u, v = np.where(axis == 0, ly, lx), np.where(axis == 2, ly, lz)
    ray_len = np.sqrt((d * d).sum(0))
    cos = np.abs(nx * d[0] + ny * d[1] + nz * d[2]) / ray_len
    footprint = t * ray_len / (np.float32(focal) * np.maximum(cos, np.float32(0.1)))
    labels = np.asarray(box.labels, np.uint8)[face]
    unique = list({id(m): m for m in box.materials}.values())
    if isinstance(face, int) or len(unique) == 1:
        return box.materials[face if isinstance(face, int) else 0].albedo(u, v, footprint), normal, labels
    albedo = np.empty((P.shape[1], 3), np.float32)
    which = np.array([next(j for j, m in enumerate(unique) if m is mat) for mat in box.materials])[face]
    for j, mat in enumerate(unique):
        part = np.flatnonzero(which == j)
        if part.size:
            albedo[part] = mat.albedo(u[part], v[part], footprint[part])
    return albedo, normal, labels


_CORNERS = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])
_EDGES = np.array([(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1])


@dataclass
class _Scene:
    boxes: list[_Box]
    position: np.ndarray  # camera centre, world
    yaw: float  # radians; camera orientation (see _camera_rotation)
    pitch: float
    roll: float
    lights: list[tuple[str, np.ndarray, float]]  # ("point", position, intensity) | ("sun", direction, intensity)
    ambient: tuple[float, float]  # (from below, from above): hemispherical ambient light
    max_range: float = math.inf
    fog: float = math.inf  # haze extinction distance, metres
    haze: np.ndarray = field(default_factory=lambda: np.array([0.55, 0.6, 0.68]))
    zenith: np.ndarray = field(default_factory=lambda: np.array([0.12, 0.25, 0.6]))


def _camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """world_from_camera rotation: camera (x right, y down, z forward) looking along world +y,
    then roll about the optical axis, pitch up (positive) and yaw left (positive) about world z."""
    base = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    cy, sy, cp, sp, cr, sr = (f(a) for a in (yaw, pitch, roll) for f in (math.cos, math.sin))
    rz_world = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz_world @ base @ rx @ rz


# --------------------------------------------------------------------------- scenes


def _material(
    rng: np.random.Generator,
    pattern: str,
    colour: np.ndarray,
    colour2: np.ndarray | None = None,
    *,
    scale: float = 1.0,
    contrast: float = 0.2,
    params: dict[str, float] | None = None,
) -> _Material:
    """A material with a random noise offset; numbers become Python floats so that float32 pixel
    arithmetic is never promoted to float64 by a numpy scalar."""
    colour2 = colour * 0.5 if colour2 is None else colour2
    params = {k: float(v) for k, v in (params or {}).items()}
    offset = (float(rng.uniform(0, 256)), float(rng.uniform(0, 256)))
    return _Material(pattern, colour, colour2, float(scale), float(contrast), offset, params)


def _wood(rng: np.random.Generator) -> np.ndarray:
    hsv = (rng.uniform(0.05, 0.11), rng.uniform(0.4, 0.7), rng.uniform(0.35, 0.8))
    return np.array(colorsys.hsv_to_rgb(*hsv)) ** 2.2


def _indoor_materials(rng: np.random.Generator) -> dict[str, _Material]:
    kind = rng.choice(["tiles", "planks", "checker", "carpet"])
    if kind == "tiles":
        c = _colour(rng, (0.0, 0.3), (0.45, 0.9))
        floor = _material(
            rng, "tiles", c, c * 0.45, scale=rng.uniform(0.3, 0.6), contrast=0.25, params={"grout": 0.012}
        )
    elif kind == "planks":
        floor = _material(
            rng,
            "planks",
            _wood(rng),
            scale=rng.uniform(0.1, 0.2),
            contrast=0.45,
            params={"length": rng.uniform(0.8, 1.6)},
        )
    elif kind == "checker":
        floor = _material(
            rng,
            "checker",
            _colour(rng, (0, 0.2), (0.7, 0.95)),
            _colour(rng, (0, 0.4), (0.1, 0.4)),
            scale=rng.uniform(0.3, 0.5),
            contrast=0.1,
        )
    else:
        floor = _material(rng, "plain", _colour(rng, (0.1, 0.6), (0.3, 0.7)), contrast=0.35)
    paint = _colour(rng, (0.0, 0.3), (0.6, 0.95))
    walls = _material(rng, "plain", paint, contrast=0.08)
    if rng.random() < 0.35:
        feature = _material(
            rng, "stripes", paint, _colour(rng, (0.1, 0.5), (0.4, 0.9)), scale=rng.uniform(0.08, 0.3), contrast=0.05
        )
    else:
        feature = _material(rng, "plain", _colour(rng, (0.0, 0.5), (0.5, 0.95)), contrast=0.1)
    white = _colour(rng, (0.0, 0.08), (0.85, 0.95))
    if rng.random() < 0.4:
        ceiling = _material(rng, "tiles", white, white * 0.6, scale=0.6, contrast=0.05, params={"grout": 0.02})
    else:
        ceiling = _material(rng, "plain", white, contrast=0.05)
    return {"floor": floor, "walls": walls, "feature": feature, "ceiling": ceiling}


def _furniture_material(rng: np.random.Generator) -> _Material:
    r = rng.random()
    if r < 0.4:
        return _material(
            rng,
            "planks",
            _wood(rng),
            scale=rng.uniform(0.08, 0.2),
            contrast=0.3,
            params={"length": rng.uniform(0.6, 2.0)},
        )
    if r < 0.55:
        return _material(
            rng,
            "checker",
            _colour(rng, (0.3, 0.8), (0.3, 0.9)),
            _colour(rng, (0.3, 0.8), (0.1, 0.5)),
            scale=rng.uniform(0.05, 0.15),
            contrast=0.1,
        )
    return _material(rng, "plain", _colour(rng, (0.2, 0.9), (0.2, 0.95)), contrast=0.15)


def _furniture(rng: np.random.Generator, room: tuple[float, float, float], y_min: float):
    """One piece of furniture: (boxes, world footprint (x0, x1, y0, y1)), or None if it does not fit."""
    width, depth, height = room
    kind = rng.choice(["cabinet", "table", "sofa", "crate"], p=[0.3, 0.3, 0.2, 0.2])
    mat = _furniture_material(rng)
    mats = [mat] * 6
    obj = (OBJECT,) * 6
    if kind == "cabinet":  # against a wall, axis-aligned
        w, d, h = rng.uniform(0.6, 1.6), rng.uniform(0.35, 0.6), rng.uniform(0.8, min(2.1, height - 0.1))
        wall = rng.integers(3)
        if wall == 0:  # far wall
            if w > width:
                return None
            cx, cy = rng.uniform(-width / 2 + w / 2, width / 2 - w / 2), depth - d / 2
            lo, hi = (-w / 2, -d / 2, 0.0), (w / 2, d / 2, h)
        else:  # side walls: long side along y
            if y_min + w > depth:
                return None
            cx, cy = (1 if wall == 1 else -1) * (width / 2 - d / 2), rng.uniform(y_min + w / 2, depth - w / 2)
            lo, hi = (-d / 2, -w / 2, 0.0), (d / 2, w / 2, h)
        box = _Box(np.array(lo), np.array(hi), mats, obj, (cx, cy))
        return [box], (cx + lo[0], cx + hi[0], cy + lo[1], cy + hi[1])
    if kind == "table":
        w, d, h = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0), rng.uniform(0.7, 0.78)
        parts = [((-w / 2, -d / 2, h - 0.04), (w / 2, d / 2, h))]
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (w / 2 - 0.08), sy * (d / 2 - 0.08)
                parts.append(((x - 0.03, y - 0.03, 0.0), (x + 0.03, y + 0.03, h - 0.04)))
        yaw = rng.uniform(-0.6, 0.6)
    elif kind == "sofa":
        w, d = rng.uniform(1.4, 2.2), rng.uniform(0.8, 1.0)
        seat, back = rng.uniform(0.4, 0.5), rng.uniform(0.75, 0.9)
        parts = [((-w / 2, -d / 2, 0.0), (w / 2, d / 2, seat)), ((-w / 2, d / 2 - 0.2, seat), (w / 2, d / 2, back))]
        yaw = rng.uniform(-0.6, 0.6)
    else:
        w = d = rng.uniform(0.3, 0.7)
        parts = [((-w / 2, -d / 2, 0.0), (w / 2, d / 2, w * rng.uniform(0.7, 1.3)))]
        yaw = rng.uniform(-0.8, 0.8)
    r = math.hypot(w, d) / 2
    if 2 * r > width - 0.1 or y_min + 2 * r > depth - 0.05:
        return None
    cx, cy = rng.uniform(-width / 2 + r, width / 2 - r), rng.uniform(y_min + r, depth - r)
    boxes = [_Box(np.array(lo), np.array(hi), mats, obj, (cx, cy), yaw) for lo, hi in parts]
    return boxes, (cx - r, cx + r, cy - r, cy + r)


def _indoor(rng: np.random.Generator) -> _Scene:
    width, depth, height = rng.uniform(3, 8), rng.uniform(3, 10), rng.uniform(2.4, 3.2)
    m = _indoor_materials(rng)
    walls = [m["walls"]] * 4
    walls[rng.integers(4)] = m["feature"]
    room = _Box(
        np.array([-width / 2, 0.0, 0.0]),
        np.array([width / 2, depth, height]),
        [*walls, m["floor"], m["ceiling"]],
        (WALL, WALL, WALL, WALL, FLOOR, CEILING),
        inside=True,
    )
    position = np.array(
        [rng.uniform(-1, 1) * (width / 2 - 1.0), rng.uniform(0.3, 1.0), rng.uniform(1.0, min(1.7, height - 1.0))]
    )
    yaw, pitch, roll = np.radians([rng.uniform(-15, 15), rng.uniform(-15, 5), rng.uniform(-4, 4)])
    axis = _camera_rotation(yaw, pitch, roll)[:, 2]
    farthest = float(((room.corners() - position) @ axis).max())  # bounds every visible depth
    if farthest > DEPTH_RANGE["indoor"][1] - 0.01:
        position[1] += (farthest - DEPTH_RANGE["indoor"][1] + 0.01) / axis[1]
    boxes = [room]
    footprints: list[tuple[float, float, float, float]] = []
    for _ in range(rng.integers(2, 7)):
        for _attempt in range(20):
            piece = _furniture(rng, (width, depth, height), position[1] + 0.9)
            if piece is None:
                continue
            parts, (x0, x1, y0, y1) = piece
            if all(x1 < a0 or x0 > a1 or y1 < b0 or y0 > b1 for a0, a1, b0, b1 in footprints):
                boxes += parts
                footprints.append((x0, x1, y0, y1))
                break
    lamp = np.array(
        [
            rng.uniform(-width / 2 + 0.5, width / 2 - 0.5),
            rng.uniform(min(position[1] + 0.5, depth - 0.5), depth - 0.5),
            height - 0.05,
        ]
    )
    fill = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.2), rng.uniform(0.2, 1.0)])
    lights = [("point", lamp, rng.uniform(1.2, 2.2)), ("sun", fill / np.linalg.norm(fill), rng.uniform(0.1, 0.4))]
    k = rng.uniform(0.8, 1.2)
    return _Scene(boxes, position, yaw, pitch, roll, lights, (0.12 * k, 0.28 * k))


def _street(rng: np.random.Generator) -> _Scene:
    half = rng.uniform(3.5, 6.0)  # road half width
    facade = half + rng.uniform(1.5, 3.5)
    asphalt = np.array([1.0, 1.0, 1.02]) * rng.uniform(0.04, 0.1)
    road = _material(rng, "road", asphalt, contrast=0.3, params={"half_width": half})
    ground = _Box(np.array([-1e4, -1e4, -1.0]), np.array([1e4, 1e4, 0.0]), [road] * 6, (FLOOR,) * 6)
    boxes = [ground]
    for side in (-1, 1):
        y = rng.uniform(-15, -5)
        while y < 140:
            length = rng.uniform(6, 22)
            if rng.random() < 0.2:  # an alley
                y += rng.uniform(3, 10)
                continue
            inner, depth, height = facade + rng.uniform(0, 1.5), rng.uniform(8, 15), rng.uniform(5, 35)
            wall = _colour(rng, (0.0, 0.4), (0.35, 0.85))
            glass = _colour(rng, (0.1, 0.4), (0.1, 0.3))
            windows = _material(
                rng,
                "windows",
                wall,
                glass,
                scale=rng.uniform(2.5, 4.0),
                contrast=0.12,
                params={"floor_height": rng.uniform(2.8, 3.6), "window_width": rng.uniform(0.35, 0.6)},
            )
            roof = _material(rng, "plain", wall * 0.5, contrast=0.1)
            lo, hi = np.array([-depth / 2, -length / 2, 0.0]), np.array([depth / 2, length / 2, height])
            centre = (side * (inner + depth / 2), y + length / 2)
            boxes.append(_Box(lo, hi, [windows] * 4 + [roof] * 2, (WALL,) * 6, centre))
            y += length
    lanes = [-half / 2, half / 2, -(half - 1.0), half - 1.0]
    cars: list[tuple[float, float]] = []
    for _ in range(rng.integers(2, 7)):
        lane, y = lanes[rng.integers(4)], rng.uniform(7, 70)
        if any(lane == a and abs(y - b) < 7 for a, b in cars):
            continue
        cars.append((lane, y))
        length, yaw = rng.uniform(3.8, 4.8), rng.uniform(-0.08, 0.08)
        paint = _material(rng, "plain", _colour(rng, (0.3, 0.9), (0.2, 0.9)), contrast=0.05)
        dark = _material(rng, "plain", np.array([0.02, 0.02, 0.025]), contrast=0.1)
        glass = _material(rng, "plain", np.array([0.03, 0.04, 0.06]), contrast=0.05)
        parts = [
            ((-0.875, -length / 2, 0.3), (0.875, length / 2, 0.95), paint),
            ((-0.78, -0.3 * length, 0.95), (0.78, 0.2 * length, 1.45), glass),
        ]
        for axle in (-0.32, 0.32):
            parts.append(((-0.9, axle * length - 0.3, 0.0), (0.9, axle * length + 0.3, 0.6), dark))
        for lo, hi, mat in parts:
            boxes.append(_Box(np.array(lo), np.array(hi), [mat] * 6, (OBJECT,) * 6, (lane, y), yaw))
    grey = _material(rng, "plain", np.full(3, rng.uniform(0.05, 0.3)), contrast=0.1)
    for _ in range(rng.integers(2, 9)):
        x, y, height = rng.choice([-1, 1]) * (half + 0.4), rng.uniform(4, 80), rng.uniform(3.5, 7)
        boxes.append(
            _Box(np.array([-0.075, -0.075, 0.0]), np.array([0.075, 0.075, height]), [grey] * 6, (OBJECT,) * 6, (x, y))
        )
    position = np.array([rng.choice([-1, 1]) * half / 2 + rng.uniform(-0.3, 0.3), 0.0, rng.uniform(1.4, 1.9)])
    yaw, pitch, roll = np.radians([rng.uniform(-6, 6), rng.uniform(-5, 2), rng.uniform(-2, 2)])
    elevation, azimuth = math.radians(rng.uniform(20, 65)), rng.uniform(0, 2 * math.pi)
    sun = np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )
    haze = np.array([0.62, 0.68, 0.78]) * rng.uniform(0.8, 1.1)
    zenith = np.array([0.1, 0.22, 0.62]) * rng.uniform(0.7, 1.1)
    k = rng.uniform(0.8, 1.2)
    return _Scene(
        boxes,
        position,
        yaw,
        pitch,
        roll,
        [("sun", sun, rng.uniform(1.0, 1.6))],
        (0.15 * k, 0.4 * k),
        STREET_MAX_RANGE,
        rng.uniform(150, 400),
        haze,
        zenith,
    )


# --------------------------------------------------------------------------- rendering


def _srgb_lut(n: int = 4096) -> np.ndarray:
    x = np.linspace(0.0, 1.0, n)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32) * 255


_SRGB = _srgb_lut()


def _scene_and_camera(seed: int, kind: str, pan_deg: float) -> tuple[np.random.Generator, _Scene, np.ndarray]:
    """The scene ``seed`` draws, the camera's world rotation, and the generator drawn so far."""
    rng = np.random.default_rng(seed)
    scene = _indoor(rng) if kind == "indoor" else _street(rng)
    return rng, scene, _camera_rotation(scene.yaw + math.radians(pan_deg), scene.pitch, scene.roll)


def lidar_scan(
    seed: int,
    kind: str = "indoor",
    *,
    offset: tuple[float, float, float] = (0.0, -0.3, 0.0),
    beams: int = 64,
    elevation_deg: tuple[float, float] = (-25.0, 3.0),
    azimuth_deg: tuple[float, float] = (-70.0, 70.0),
    azimuth_step_deg: float = 0.2,
    pan_deg: float = 0.0,
) -> np.ndarray:
    """Returns of a spinning LiDAR in the scene :func:`render_scene` draws for ``seed``: ``beams``
    beams evenly spread over ``elevation_deg`` (up positive), fired every ``azimuth_step_deg`` over
    ``azimuth_deg`` (right positive), from ``offset`` metres in the camera's optical frame (default
    0.3 m above the camera) with its axes parallel to the camera's. Points (N, 3) float32 in the
    LiDAR's frame (x right, y down, z forward), the first hit of each beam within the scene's range."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    _, scene, R = _scene_and_camera(seed, kind, pan_deg)
    elevation = np.radians(np.linspace(*elevation_deg, beams))[:, None]
    azimuth = np.radians(np.arange(azimuth_deg[0], azimuth_deg[1] + 1e-9, azimuth_step_deg))[None]
    local = np.stack(np.broadcast_arrays(np.sin(azimuth) * np.cos(elevation), -np.sin(elevation),
                                         np.cos(azimuth) * np.cos(elevation)), -1).reshape(-1, 3)  # fmt: skip
    origin = scene.position + R @ np.asarray(offset, np.float64)
    dx, dy, dz = (local @ R.T).astype(np.float32).T
    t = np.full(len(local), np.inf, np.float32)
    for box in scene.boxes:
        np.minimum(t, box.intersect(origin, dx, dy, dz), out=t)
    hit = t <= scene.max_range
    return (local[hit] * t[hit, None]).astype(np.float32)


def render_scene(
    seed: int,
    height: int = 256,
    width: int = 352,
    kind: str = "indoor",
    fov_deg: float | None = None,
    *,
    noise: float = 0.01,
    layers: bool = False,
    pan_deg: float = 0.0,
) -> dict[str, Any]:
    """Render one frame of a random scene of ``kind``, fully determined by ``seed``.

    ``fov_deg``: horizontal field of view (default ``DEFAULT_FOV_DEG[kind]``). ``noise``: standard
    deviation of the Gaussian image noise, as a fraction of full scale. ``pan_deg`` turns the camera
    about the vertical from its place in the scene: frames of one seed with a sweep of pans form a
    camera sequence (keep it within about ±15° so the view stays inside the scene). Returns a sample
    dict (see the module docstring).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    fov = DEFAULT_FOV_DEG[kind] if fov_deg is None else float(fov_deg)
    K = intrinsics(height, width, fov)
    rng, scene, R = _scene_and_camera(seed, kind, pan_deg)
    origin = scene.position

    # rays: camera (x, y, 1) per pixel, rotated to the world, so the ray parameter is the depth z
    x = ((np.arange(width) - K[0, 2]) / K[0, 0]).astype(np.float32)[None]
    y = ((np.arange(height) - K[1, 2]) / K[1, 1]).astype(np.float32)[:, None]
    Rf = R.astype(np.float32)
    dx, dy, dz = (Rf[i, 0] * x + Rf[i, 1] * y + Rf[i, 2] for i in range(3))

    t = np.full((height, width), np.inf, np.float32)
    obj = np.full((height, width), -1, np.int16)
    for k, box in enumerate(scene.boxes):
        rect = box.screen_rect(origin, R, K, (height, width))
        if rect is None:
            continue
        tk = box.intersect(origin, dx[rect], dy[rect], dz[rect])
        closer = tk < t[rect]
        np.copyto(t[rect], tk, where=closer)
        np.copyto(obj[rect], k, where=closer)

    valid = (obj >= 0) & (t <= scene.max_range)
    depth = np.where(valid, t, np.float32(0))

    # shade the hits, grouped by object (sorted once, so each object is a contiguous run)
    hit = np.flatnonzero(obj >= 0)
    ob = obj.ravel()[hit]
    order = np.argsort(ob, kind="stable")
    hit, ob = hit[order], ob[order]
    runs = np.searchsorted(ob, np.arange(len(scene.boxes) + 1))
    th = t.ravel()[hit]
    d = np.stack([a.ravel().take(hit) for a in (dx, dy, dz)])
    ray_len = np.sqrt((d * d).sum(0))
    P = origin[:, None].astype(np.float32) + th * d
    albedo = np.empty((hit.size, 3), np.float32)
    normal = np.empty((3, hit.size), np.float32)
    surface = np.empty(hit.size, np.uint8)
    for k, box in enumerate(scene.boxes):
        run = slice(runs[k], runs[k + 1])
        if run.start == run.stop:
            continue
        albedo[run], normal[:, run], surface[run] = _shade_box(box, origin, P[:, run], d[:, run], th[run], K[0, 0])

    below, above = (float(a) for a in scene.ambient)
    shading = below + (above - below) * (0.5 + 0.5 * normal[2])
    for light, vec, power in scene.lights:
        if light == "point":
            to_light = vec[:, None].astype(np.float32) - P
            dist2 = (to_light * to_light).sum(0)
            lambert = np.maximum((normal * to_light).sum(0), 0) / np.sqrt(dist2)
            shading += float(power) * lambert / (1 + dist2 / 6.25)
        else:
            shading += float(power) * np.maximum((normal * vec[:, None].astype(np.float32)).sum(0), 0)
    colour = albedo * shading[:, None]
    if math.isfinite(scene.fog):
        keep = np.exp(th * ray_len * np.float32(-1 / scene.fog))[:, None]
        colour = colour * keep + scene.haze.astype(np.float32) * (1 - keep)

    linear = np.empty((height * width, 3), np.float32)
    linear[hit] = colour
    miss = np.flatnonzero(obj.ravel() < 0)
    if miss.size:  # sky: haze at the horizon to blue at the zenith, with a little cloud
        md = np.stack([a.ravel()[miss] for a in (dx, dy, dz)])
        up = md[2] / np.sqrt((md * md).sum(0))
        blend = np.clip(up * 2.5, 0, 1)[:, None]
        sky = scene.haze * (1 - blend) + scene.zenith * blend
        lift = np.maximum(up, 0.05)
        cloud = np.clip(_noise(md[0] / lift * 8 + 40, md[1] / lift * 8 + 90) * 0.5 - 0.3, 0, 1)[:, None]
        linear[miss] = sky * (1 - cloud) + 0.9 * cloud

    exposure = np.clip(0.2 / max(float(linear.mean()), 1e-6), 0.3, 4.0)
    index = np.minimum(linear * np.float32(exposure * 4095), np.float32(4095)).astype(np.int32)  # linear ≥ 0
    image = _SRGB.take(index)
    if noise > 0:  # Gaussian, quantised to 256 levels (fast): one random byte per value
        image += (
            (_GAUSS * np.float32(noise * 255)).take(np.frombuffer(rng.bytes(image.size), np.uint8)).reshape(image.shape)
        )
    image = (np.clip(image, 0, 255) + 0.5).astype(np.uint8).reshape(height, width, 3)

    world_from_camera = np.eye(4)
    world_from_camera[:3, :3], world_from_camera[:3, 3] = R, origin
    sample: dict[str, Any] = {
        "image": image,
        "depth": depth,
        "valid": valid,
        "K": K,
        "name": f"{kind}_{seed:07d}",
        "meta": {
            "kind": kind,
            "seed": int(seed),
            "fov_deg": fov,
            "camera_height": float(origin[2]),
            "pitch_deg": math.degrees(scene.pitch),
            "roll_deg": math.degrees(scene.roll),
            "yaw_deg": math.degrees(scene.yaw) + pan_deg,
            "floor_plane": np.array([*R[2], origin[2]]),
            "world_from_camera": world_from_camera,
        },
    }
    if layers:
        surf = np.zeros(height * width, np.uint8)
        surf[hit] = surface
        alb = linear.copy()
        alb[hit] = albedo
        shade = np.ones(height * width, np.float32)
        shade[hit] = shading
        sample["layers"] = {
            "surface": surf.reshape(height, width),
            "albedo": alb.reshape(height, width, 3),
            "shading": shade.reshape(height, width),
        }
    return sample
