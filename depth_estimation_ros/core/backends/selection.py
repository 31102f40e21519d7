"""``backend: auto`` for a graph on the CPU: of the runtimes installed, the fastest whose depth keeps
δ1 ≥ 0.99 against the first (ONNX Runtime fp32, the reference) on the same generated frames.

Each runtime runs the frames once (warm-up, and the outputs compared), then each is timed in turn
within each round, so all see the same load of a shared machine; the median decides. What was
measured stays on the chosen backend (``selection``) for the log and /diagnostics.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time

import numpy as np

from depth_estimation_ros.core.backends.base import Backend, network_input
from depth_estimation_ros.core.metrics import agreement_d1

log = logging.getLogger(__name__)

AGREEMENT = 0.99  # δ1 of a runtime's depth against the reference's, on the same frames
ROUNDS = 3


@functools.lru_cache(maxsize=4)
def probe_frames(height: int, width: int, count: int = 2) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Network inputs of generated indoor scenes at the graph's input size, with their K there."""
    from depth_estimation_ros.core.scenes import render_scene

    frames = []
    for seed in range(count):
        scene = render_scene(seed, height, width, "indoor")
        frames.append((network_input(scene["image"], (height, width)), scene["K"].astype(np.float32)))
    return tuple(frames)


def fastest(candidates: list[Backend], rounds: int = ROUNDS) -> Backend:
    """The fastest of ``candidates`` (same graph, different runtimes; the first is the reference)
    that agrees with the first; the others are released."""
    info = candidates[0].info
    frames = probe_frames(info.input_height, info.input_width)
    depth = {b.name: [b(batch, K)["depth"] for batch, K in frames] for b in candidates}
    reference = depth[candidates[0].name]
    agreement = {name: min(map(agreement_d1, outs, reference)) for name, outs in depth.items()}
    times: dict[str, list[float]] = {b.name: [] for b in candidates}
    for r in range(rounds):
        batch, K = frames[r % len(frames)]
        for backend in candidates:
            start = time.perf_counter()
            backend(batch, K)
            times[backend.name].append(1000 * (time.perf_counter() - start))
    measured = {name: statistics.median(t) for name, t in times.items()}
    usable = [b for b in candidates if agreement[b.name] >= AGREEMENT]
    chosen = min(usable, key=lambda b: measured[b.name])
    chosen.selection = ", ".join(f"{name} {ms:.1f} ms δ1 {agreement[name]:.3f}" for name, ms in measured.items())
    log.info("backend auto: %s (%s)", chosen.name, chosen.selection)
    return chosen
