"""The node's inference thread: a one-slot handoff from the subscription callback, and its statistics.

:class:`LatestFrameSlot` is the handoff: a new frame replaces an unprocessed one (counted as
dropped), so output is never older than one frame and memory stays bounded. :class:`FrameWorker`
runs the pipeline on the newest frame in its own thread, so the executor never blocks; any exception
while processing a frame is counted with its reason and the frame skipped: the thread never dies.
:class:`PipelineStats` is shared by the two threads (and the diagnostics timer), so every access
holds its lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

from depth_estimation_ros.ros.pairing import Decision
from depth_estimation_ros.ros.pipeline import BadFrame, DepthPipeline


class LatestFrameSlot:
    """One-slot handoff: ``put`` never blocks and replaces an unprocessed item; ``take`` waits."""

    def __init__(self):
        self._item = None
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item) -> bool:
        """Offer the newest item; returns True if it replaced (dropped) an unprocessed one."""
        with self._ready:
            replaced = self._item is not None
            self.dropped += replaced
            self._item = item
            self._ready.notify()
            return replaced

    def take(self, timeout: float | None = None):
        """The newest item (None on timeout or after close); the slot is empty afterwards."""
        with self._ready:
            self._ready.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


def failure_kind(exc: BaseException) -> str:
    """A short category for counting: bad input, or the exception's type for anything unexpected."""
    return "bad input" if isinstance(exc, BadFrame) else type(exc).__name__


class FrameWorker:
    """The inference thread: takes the newest paired frame (a :class:`~.pairing.Decision`: image,
    CameraInfo, scale-source input) from the slot, runs the pipeline, hands the output to
    ``publish``. A frame that fails in any way goes to ``on_bad_frame`` (reason, kind) and is counted;
    the loop goes on with the next frame."""

    def __init__(self, pipeline: DepthPipeline, publish, on_bad_frame=None, compressed: bool = False):
        self.pipeline, self.publish, self.compressed = pipeline, publish, compressed
        self.on_bad_frame = on_bad_frame or (lambda reason, kind: None)
        self.slot = LatestFrameSlot()
        self.stats = PipelineStats()
        self._thread: threading.Thread | None = None

    def offer(self, image, camera_info, sparse=None) -> None:
        """An image with its inputs, counted as received (tests; the node counts at arrival and puts
        the pairing's decisions). Never blocks."""
        self.stats.on_received()
        self.slot.put(Decision(image, camera_info, sparse))

    def start(self) -> None:
        self.slot = LatestFrameSlot()
        thread = threading.Thread(target=self._run, name="depth-inference", daemon=True)
        thread.start()
        self._thread = thread  # only once started: stop() may run at any point (Ctrl-C during activate)

    def stop(self, timeout: float = 5.0) -> None:
        self.slot.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while (frame := self.slot.take()) is not None:
            try:
                output = self.pipeline.process(frame.image, frame.camera_info, compressed=self.compressed,
                                               sparse=frame.sparse)  # fmt: skip
                self.publish(output)
            except Exception as exc:  # one odd frame (or a failed publish) must never end the thread
                reason = str(exc) if isinstance(exc, BadFrame) else f"{type(exc).__name__}: {exc}"
                kind = failure_kind(exc)
                self.stats.on_bad_frame(kind, reason)
                self.on_bad_frame(reason, kind)
                continue
            self.stats.on_published(output.timings)


class PipelineStats:
    """Rates, latencies and failures over a sliding window, as key/value pairs for diagnostic_msgs.

    Thread-safe: the subscription callback, the inference thread and the diagnostics timer all use it.
    """

    def __init__(self, window: float = 5.0):
        self.window = window
        self._lock = threading.Lock()
        self.received: deque[float] = deque()
        self.published: deque[float] = deque()
        self.latency: dict[str, deque[tuple[float, float]]] = {}
        self.failures: Counter[str] = Counter()  # kind → count
        self.last_error = ""
        self.lost_before_node = 0  # gaps in the publisher's sequence numbers
        self.last_received: float | None = None
        self.total_received = self.total_published = 0

    @property
    def bad_frames(self) -> int:
        with self._lock:
            return sum(self.failures.values())

    def _trim(self, times: deque, now: float, key=lambda item: item) -> None:
        while times and key(times[0]) < now - self.window:
            times.popleft()

    def on_received(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.received.append(now)
            self.last_received = now
            self.total_received += 1

    def on_lost(self, count: int) -> None:
        with self._lock:
            self.lost_before_node += count

    def on_published(self, timings: dict[str, float], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.published.append(now)
            self.total_published += 1
            for stage, seconds in timings.items():
                self.latency.setdefault(stage, deque()).append((now, seconds))

    def on_bad_frame(self, kind: str, reason: str) -> None:
        with self._lock:
            self.failures[kind] += 1
            self.last_error = reason

    def seconds_without_input(self, since: float, now: float | None = None) -> float:
        """Seconds since the last input frame (or since ``since``, when none came yet)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return now - (self.last_received if self.last_received is not None else since)

    def summary(self, dropped: int, now: float | None = None) -> dict[str, str]:
        now = time.monotonic() if now is None else now
        with self._lock:
            for times in (self.received, self.published):
                self._trim(times, now)
            values = {
                "input rate (Hz)": f"{len(self.received) / self.window:.2f}",
                "output rate (Hz)": f"{len(self.published) / self.window:.2f}",
                "received frames": str(self.total_received),
                "published frames": str(self.total_published),
                "dropped frames": str(dropped),
                "frames lost before the node": str(self.lost_before_node),
                "bad frames": str(sum(self.failures.values())),
            }
            for kind, count in sorted(self.failures.items()):
                values[f"bad frames ({kind})"] = str(count)
            for stage, samples in self.latency.items():
                self._trim(samples, now, key=lambda sample: sample[0])
                if samples:
                    values[f"{stage} latency (ms)"] = f"{1000 * sum(s for _, s in samples) / len(samples):.1f}"
            if self.last_error:
                values["last bad frame"] = self.last_error
            return values

    def window_counts(self, now: float | None = None) -> tuple[int, int]:
        """(frames received, frames published) within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for times in (self.received, self.published):
                self._trim(times, now)
            return len(self.received), len(self.published)
