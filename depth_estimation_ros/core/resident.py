"""The frame's whole road on the model's device: uint8 frame in, message bytes out.

With a CUDA model, :class:`DeviceFramePath` keeps the frame on the GPU from the upload to the
packed cloud: the uint8 image goes up once (from pinned memory), is area-resized and scaled there,
runs through the network (fp16/bf16 channels_last inside the backend), and the depth, confidence
and cloud are up-sampled, masked, back-projected and packed there too; each output then comes
down once, straight into its message buffer. Optionally the device work after the upload is one
CUDA graph (fixed frame size), so a frame costs a handful of launches.

The same code runs on the CPU, where the tests hold it to the numpy road
(:func:`~depth_estimation_ros.core.estimator.preprocess`, :func:`~depth_estimation_ros.core.estimator.postprocess`,
:class:`~depth_estimation_ros.core.pointcloud.CloudPacker`): same resampling (OpenCV's area
down-scaling, bilinear or nearest up-sampling with pixel centres at +0.5), same rounding of the
resized uint8 image, same byte layout.

The backend must offer ``forward(tensor) -> dict of tensors`` on its device and ``torch_device``
(:class:`~depth_estimation_ros.core.backends.torch_backend.TorchBackend` does).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.edges import EdgeFilter, flag
from depth_estimation_ros.core.pointcloud import cloud_layout

log = logging.getLogger(__name__)


def area_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) weights of OpenCV's INTER_AREA down-scaling along one axis.

    Output pixel i averages the source interval [i·s, (i+1)·s), s = source/target, each source
    pixel weighted by its overlap with it.
    """
    if target > source:
        raise ValueError(f"area resampling only shrinks: {source} → {target}")
    scale = source / target
    edges = np.arange(target + 1) * scale
    lo, hi = edges[:-1, None], edges[1:, None]
    pixels = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(hi, pixels + 1) - np.maximum(lo, pixels), 0, None)
    return (overlap / scale).astype(np.float32)


def linear_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) weights of bilinear resampling with pixel centres at +0.5 (edges clamped)."""
    x = np.clip((np.arange(target) + 0.5) * (source / target) - 0.5, 0, source - 1)
    left = np.floor(x).astype(int)
    right = np.minimum(left + 1, source - 1)
    weights = np.zeros((target, source), np.float32)
    np.add.at(weights, (np.arange(target), left), 1 - (x - left))
    np.add.at(weights, (np.arange(target), right), x - left)
    return weights


def shrink_matrix(source: int, target: int) -> np.ndarray:
    """Area weights when shrinking (OpenCV's INTER_AREA), bilinear when growing."""
    return area_matrix(source, target) if target <= source else linear_matrix(source, target)


class DeviceFramePath:
    """Pre-process, network, post-process and cloud packing as tensors on the backend's device.

    Args mirror :class:`~depth_estimation_ros.core.estimator.DepthEstimator` (``resize``,
    ``output_resolution``, ``min_confidence``) and :class:`~depth_estimation_ros.core.pointcloud.CloudPacker`
    (``rgb``, ``decimation``, ``max_range``). ``cuda_graph`` captures the device work per frame size.
    """

    def __init__(self, backend, cuda_graph: bool = False, **options):
        self.backend, self.device = backend, torch.device(backend.torch_device)
        self.cuda_graph = cuda_graph and self.device.type == "cuda"
        self.timings: dict[str, float] = {}
        self._key = None
        self._consts: dict[str, torch.Tensor] = {}
        self._graph = None
        self.configure(**options)  # the options and their defaults are configure's

    def configure(
        self,
        resize: str = "stretch",
        output_resolution: str = "camera",
        min_confidence: float = 0.0,
        points: bool = True,
        rgb: bool = True,
        decimation: int = 1,
        max_range: float | None = None,
        edges: EdgeFilter | None = None,
        edges_in_depth: bool = False,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        """Set the options (a change takes effect on the next frame, with new constants and graph).

        ``edges``: the flying-pixel filter for the cloud (and for ``depth`` too with ``edges_in_depth``).
        ``bounds``: plausible metres (the card's); depth outside becomes NaN, as on the host."""
        self.resize, self.output_resolution, self.min_confidence = resize, output_resolution, min_confidence
        self.points, self.rgb, self.decimation, self.max_range = points, rgb, decimation, max_range
        self.edges, self.edges_in_depth = edges, edges_in_depth and edges is not None
        self.bounds = bounds
        self.fields, self.point_step = cloud_layout(rgb)

    # ------------------------------------------------------------------ constants per camera
    def _prepare(self, camera: CameraModel) -> None:
        edges = None if self.edges is None else (self.edges.angle_deg, self.edges.floor_angle_deg)
        options = (self.resize, self.output_resolution, self.min_confidence, self.points, self.rgb, self.decimation,
                   self.max_range, edges, self.edges_in_depth, self.bounds)  # fmt: skip
        key = (camera.size, camera.P.tobytes(), options)
        if key == self._key:
            return
        h, w = self.backend.info.input_height, self.backend.info.input_width
        if self.resize == "stretch":
            net_camera, box = camera.resize(w, h), None
            inner = (h, w)
        else:
            net_camera, box = camera.letterbox(w, h)
            inner = (box.inner_height, box.inner_width)
        out_camera = camera if self.output_resolution == "camera" else net_camera
        cloud_camera = out_camera.decimate(self.decimation)
        ru, rv = cloud_camera.ray_grid()
        dev = self.device
        consts = {
            "ay": torch.from_numpy(shrink_matrix(camera.height, inner[0])).to(dev),
            "ax": torch.from_numpy(shrink_matrix(camera.width, inner[1])).to(dev),
            "ru": torch.from_numpy(ru).to(dev),
            "rv": torch.from_numpy(rv).to(dev),
        }
        if self.max_range is not None:
            from depth_estimation_ros.core.pointcloud import range_limit

            consts["limit"] = torch.from_numpy(range_limit(cloud_camera, self.max_range)).to(dev)
        if self.edges is not None:
            rows, cols = self.edges.constants(out_camera)
            consts["edge_rows"] = tuple(torch.from_numpy(c).to(dev) for c in rows)
            consts["edge_cols"] = tuple(torch.from_numpy(c).to(dev) for c in cols)
        self._consts, self._key, self._graph = consts, key, None
        self._integer_factors = camera.height % inner[0] == 0 and camera.width % inner[1] == 0
        self.net_camera, self.box, self.out_camera, self.cloud_camera = net_camera, box, out_camera, cloud_camera
        self._pinned = torch.empty((camera.height, camera.width, 3), dtype=torch.uint8).pin_memory() if (
            dev.type == "cuda") else None  # fmt: skip
        self._frame = torch.empty((camera.height, camera.width, 3), dtype=torch.uint8, device=dev)

    # ------------------------------------------------------------------ the device work
    def _network_input(self, frame: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) float32 in [0, 1], as :func:`~depth_estimation_ros.core.estimator.preprocess`."""
        return (self._network_pixels(frame) * (1 / 255)).unsqueeze(0)

    def _network_pixels(self, frame: torch.Tensor) -> torch.Tensor:
        """(3, h, w) float32 with the uint8 values the network sees (resized, letterboxed)."""
        c = self._consts
        h, w = self.backend.info.input_height, self.backend.info.input_width
        image = frame.permute(2, 0, 1).float()  # (3, H, W)
        if image.shape[1:] != (c["ay"].shape[0], c["ax"].shape[0]):
            image = c["ay"] @ image @ c["ax"].T
            # OpenCV's uint8 result: integer factors on both axes take its fast path (sum + n/2) / n,
            # rounding halves up; other factors round halves to even
            image = torch.floor(image + 0.5) if self._integer_factors else torch.round(image)
        if self.box is not None:
            box = self.box
            image = F.pad(
                image, (box.pad_x, w - box.pad_x - box.inner_width, box.pad_y, h - box.pad_y - box.inner_height)
            )
        return image

    def _outputs(self, frame: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = self._network_pixels(frame)
        outputs = self.backend.forward((pixels * (1 / 255)).unsqueeze(0))
        depth = outputs["depth"][0, 0]
        maps = {"depth": depth}
        if "confidence" in outputs:
            maps["confidence"] = outputs["confidence"][0, 0]
            if self.min_confidence > 0:
                maps["depth"] = torch.where(maps["confidence"] >= self.min_confidence, depth, float("nan"))
        if self.output_resolution == "camera":
            if self.box is not None:
                b = self.box
                maps = {
                    k: m[b.pad_y : b.pad_y + b.inner_height, b.pad_x : b.pad_x + b.inner_width] for k, m in maps.items()
                }
            mode = "nearest" if self.min_confidence > 0 else "bilinear"
            size = (self.out_camera.height, self.out_camera.width)
            maps = {
                k: F.interpolate(
                    m[None, None], size=size, mode=mode, **({} if mode == "nearest" else {"align_corners": False})
                )[0, 0]
                for k, m in maps.items()
            }
        if self.bounds is not None:
            low, high = self.bounds
            maps["depth"] = torch.where((maps["depth"] >= low) & (maps["depth"] <= high), maps["depth"], float("nan"))
        depth = maps["depth"]
        if self.edges is not None and (self.points or self.edges_in_depth):
            flying = torch.zeros(depth.shape, dtype=torch.bool, device=depth.device)
            flag(depth, self._consts["edge_rows"], self._consts["edge_cols"], flying)
            depth = torch.where(flying, float("nan"), depth)
            if self.edges_in_depth:
                maps["depth"] = depth
        if self.points:
            colours = frame if self.output_resolution == "camera" else pixels.permute(1, 2, 0).to(torch.uint8)
            maps["points"], maps["dense"] = self._pack(depth, colours)
        return maps

    def _pack(self, depth: torch.Tensor, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c, n = self._consts, self.decimation
        z = depth[::n, ::n]
        valid = (z > 0) & (z < (c["limit"] if "limit" in c else float("inf")))
        z = torch.where(valid, z, float("nan"))
        floats = self.point_step // 4
        cloud = torch.zeros((*z.shape, floats), dtype=torch.float32, device=z.device)
        cloud[..., 0] = c["ru"] * z
        cloud[..., 1] = c["rv"] * z
        cloud[..., 2] = z
        if self.rgb:
            rgb = colours[::n, ::n].int()
            cloud[..., 4] = ((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).view(torch.float32)
        return cloud, valid.all()

    # ------------------------------------------------------------------ one frame
    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, camera: CameraModel, out: dict[str, np.ndarray]) -> bool:
        """Fill ``out`` (``depth``, optionally ``confidence``, ``points``: the cloud's bytes) for one
        frame; returns whether the cloud is dense. Output cameras are ``self.out_camera`` and
        ``self.cloud_camera`` after the call."""
        start = time.perf_counter()
        self._prepare(camera)
        host = torch.from_numpy(np.ascontiguousarray(rgb))
        if self._pinned is not None:  # pinned staging makes the upload a true async DMA
            self._pinned.copy_(host)
            host = self._pinned
        self._frame.copy_(host, non_blocking=True)
        maps = self._replay() if self.cuda_graph else self._outputs(self._frame)
        if self.device.type == "cuda":
            torch.cuda.current_stream().synchronize()
        computed = time.perf_counter()
        for name, target in out.items():
            source = maps[name]
            if name == "points":
                target = target.view(np.float32).reshape(source.shape)
            torch.from_numpy(target).copy_(source)  # the one device-to-host copy of each output
        dense = bool(maps["dense"]) if "dense" in maps else True
        end = time.perf_counter()
        self.timings = {"device": computed - start, "download": end - computed}
        return dense

    def _replay(self) -> dict[str, torch.Tensor]:
        """The device work as one CUDA graph (captured on the first frame of a size); a model or
        engine that cannot be captured runs eagerly instead, with a warning."""
        if self._graph is None:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):  # warm-up outside the capture (cuDNN autotuning, allocations)
                    self._outputs(self._frame)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self._static = self._outputs(self._frame)
            except RuntimeError as exc:
                log.warning("CUDA graph capture failed (%s); running the device path eagerly", exc)
                self.cuda_graph = False
                return self._outputs(self._frame)
            self._graph = graph
        self._graph.replay()
        return self._static
