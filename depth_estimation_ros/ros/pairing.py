"""Every input of a frame, matched to its image by stamp: the one rule of the node and the bag tool.

:class:`FramePairing` gives an image the CameraInfo of its own stamp and, when the scale source
takes a per-frame input (:data:`~.inputs.FRAME_INPUTS`: sparse depth), that input's message of its
own stamp; the :class:`Decision` (image, CameraInfo, input) travels whole to the pipeline. An image
whose inputs have not all arrived waits for them, a bounded time by the caller's clock (the node:
arrival on the steady clock; the bag tool: log time):

* its CameraInfo: one of its frame_id (or of none) within ``tolerance`` seconds of its stamp (0: the
  same stamp). An image without one when the wait ends is a bad frame, with a reason naming its stamp.
* its source input: the nearest of its frame_id (or of none) within the input's tolerance
  (``sparse_depth_max_age``), known to be its own once one stamped at or after the image has
  arrived (sensors publish in stamp order, so nothing nearer can follow). When the wait ends the
  nearest received so far within the tolerance serves, or none: the frame is processed without
  it (the anchor holds its scale) and counted in :attr:`FramePairing.missing`.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any


def stamp_of(msg) -> tuple[int, int]:
    return int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)


def stamp_text(stamp: tuple[int, int]) -> str:
    return f"{stamp[0]}.{stamp[1]:09d}"


class RecentByStamp:
    """The last ``keep`` messages received, by (stamp, frame_id)."""

    def __init__(self, keep: int):
        self.recent: OrderedDict[tuple, Any] = OrderedDict()
        self.keep = keep

    def add(self, msg) -> None:
        key = (*stamp_of(msg), msg.header.frame_id)
        self.recent[key] = msg
        self.recent.move_to_end(key)
        while len(self.recent) > self.keep:
            self.recent.popitem(last=False)

    def clear(self) -> None:
        self.recent.clear()


class InputMatch(RecentByStamp):
    """Recent messages of one per-frame input (``name``: sparse_depth), matched to images by stamp
    within ``max_age`` seconds either side, of the image's frame_id (or none)."""

    def __init__(self, name: str = "sparse_depth", max_age: float = 0.5, keep: int = 10, registered: bool = True):
        super().__init__(keep)
        self.name, self.max_age, self.registered = name, max_age, registered

    def _pairs_with(self, msg, image) -> bool:
        """An input placed by a parameter (a LiDAR cloud) pairs whatever its frame_id."""
        return not self.registered or _same_frame(msg, image)

    def match(self, image, final: bool = False) -> tuple[bool, Any]:
        """``(decided, message or None)``: decided once one stamped at or after the image has come,
        or when ``final`` (the wait is over)."""
        t = _ns(image)
        same = [msg for msg in self.recent.values() if self._pairs_with(msg, image)]
        if not final and not any(_ns(msg) >= t for msg in same):
            return False, None
        within = [msg for msg in same if abs(_ns(msg) - t) <= round(self.max_age * 1e9)]
        return True, min(within, key=lambda msg: abs(_ns(msg) - t)) if within else None

    def why_missing(self, image) -> str:
        """Why ``image`` has none: nothing came, only other frames came, or none near its stamp."""
        if not self.recent:
            return f"no {self.name} message has arrived"
        same = [msg for msg in self.recent.values() if self._pairs_with(msg, image)]
        if not same:
            frames = ", ".join(sorted({repr(msg.header.frame_id) for msg in self.recent.values()}))
            return (f"{self.name} arrives in frame {frames}, not the image's {image.header.frame_id!r}: it must be "
                    "registered to the camera image")  # fmt: skip
        nearest = min(same, key=lambda msg: abs(_ns(msg) - _ns(image)))
        return (f"no {self.name} within {self.max_age:g} s of image {stamp_text(stamp_of(image))}; the nearest had "
                f"stamp {stamp_text(stamp_of(nearest))} ({(_ns(nearest) - _ns(image)) * 1e-9:+.6f} s)")  # fmt: skip


@dataclass(frozen=True, eq=False)  # compared by identity: messages hold arrays
class Decision:
    """The pairing's verdict on one image: its CameraInfo and source input, or why it has none."""

    image: Any
    camera_info: Any = None  # None: a bad frame, ``reason`` says why
    sparse: Any = None  # the scale source's input message (sparse depth) of its stamp, or None
    tag: Any = None  # what the caller passed with the image (the bag tool: its log time)
    reason: str = ""  # why it is a bad frame, or why a paired frame has no source input


@dataclass(frozen=True, eq=False)
class _Waiting:
    image: Any
    deadline: float
    tag: Any


class FramePairing:
    """The one rule by which the node and the bag tool give an image its inputs (module docstring).

    Every call returns the decisions it made: :meth:`image` (paired at once, or nothing while it
    waits), :meth:`camera_info` and :meth:`input` (release the waiting images they complete, in
    stamp order), :meth:`expire` (the waits that are over) and :meth:`close` (ends every wait).
    At most ``max_pending`` images wait (a newer one pushes out the oldest). Every call holds a
    lock: any executor thread may call it.
    """

    def __init__(self, tolerance: float = 0.0, wait: float = 0.1, *, keep: int = 30, max_pending: int = 8,
                 sparse: InputMatch | None = None):  # fmt: skip
        self.tolerance, self.wait, self.max_pending, self.sparse = tolerance, wait, max_pending, sparse
        self.infos = RecentByStamp(keep)
        self.waiting: list[_Waiting] = []
        self.missing: Counter[str] = Counter()  # input name → frames processed without it
        self._lock = threading.Lock()

    def image(self, image, now: float, tag=None) -> list[Decision]:
        with self._lock:
            decisions = self._expire(now)
            waiting = _Waiting(image, now + self.wait, tag)
            if (decision := self._complete(waiting, final=self.wait <= 0)) is not None:
                return [*decisions, decision]
            self.waiting.append(waiting)
            if len(self.waiting) > self.max_pending:  # bounded: the oldest gives way
                decisions.append(self._end(self.waiting.pop(0), f"arrived before {self.max_pending} newer "
                                                                "images were waiting too"))  # fmt: skip
            return decisions

    def camera_info(self, info, now: float) -> list[Decision]:
        with self._lock:
            decisions = self._expire(now)  # a wait that ended before this CameraInfo came stays ended
            self.infos.add(info)
            return decisions + self._release()

    def input(self, msg, now: float) -> list[Decision]:
        """A message of the scale source's input (sparse depth)."""
        with self._lock:
            decisions = self._expire(now)
            self.sparse.add(msg)
            return decisions + self._release()

    def expire(self, now: float) -> list[Decision]:
        with self._lock:
            return self._expire(now)

    def close(self, how: str = "arrived before the input ended") -> list[Decision]:
        """Ends every wait."""
        with self._lock:
            waiting, self.waiting = self.waiting, []
            return [self._end(w, how) for w in _by_stamp(waiting)]

    def clear(self) -> None:
        """Forgets every CameraInfo and input message, and drops the waiting images uncounted."""
        with self._lock:
            self.infos.clear()
            self.waiting = []
            if self.sparse is not None:
                self.sparse.clear()

    def _info_for(self, image):
        candidates = [info for info in self.infos.recent.values() if self._describes(info, image)]
        return min(candidates, key=lambda info: abs(_ns(info) - _ns(image))) if candidates else None

    def _complete(self, waiting: _Waiting, final: bool) -> Decision | None:
        """The decision for a waiting image once everything it needs is decided (or ``final``)."""
        info = self._info_for(waiting.image)
        if info is None:
            return self._missing_info(waiting, "had arrived (camera_info_wait is 0)") if final else None
        if self.sparse is None:
            return Decision(waiting.image, info, tag=waiting.tag)
        decided, msg = self.sparse.match(waiting.image, final)
        if not decided:
            return None
        if msg is None:
            self.missing[self.sparse.name] += 1
            return Decision(waiting.image, info, None, waiting.tag, self.sparse.why_missing(waiting.image))
        return Decision(waiting.image, info, msg, waiting.tag)

    def _release(self) -> list[Decision]:
        """The waiting images that have everything now, in stamp order; the others wait on."""
        done = {id(w): d for w in self.waiting if (d := self._complete(w, final=False)) is not None}
        self.waiting = [w for w in self.waiting if id(w) not in done]
        return sorted(done.values(), key=lambda d: _ns(d.image))

    def _expire(self, now: float) -> list[Decision]:
        over = [w for w in self.waiting if now > w.deadline]  # one logged at the deadline is in time
        self.waiting = [w for w in self.waiting if w not in over]
        return [self._end(w, f"arrived within {self.wait:g} s") for w in _by_stamp(over)]

    def _end(self, waiting: _Waiting, how: str) -> Decision:
        """A wait that is over: processed with what came, or a bad frame without its CameraInfo."""
        if self._info_for(waiting.image) is not None:
            return self._complete(waiting, final=True)
        return self._missing_info(waiting, how)

    def _describes(self, info, image) -> bool:
        return _same_frame(info, image) and abs(_ns(info) - _ns(image)) <= round(self.tolerance * 1e9)

    def _missing_info(self, waiting: _Waiting, how: str) -> Decision:
        image = waiting.image
        within = f" (within {self.tolerance:g} s)" if self.tolerance else ""
        reason = (f"image {stamp_text(stamp_of(image))}: no CameraInfo of its stamp{within} and frame "
                  f"{image.header.frame_id!r} {how}")  # fmt: skip
        if self.infos.recent:  # what did come, so the log shows a clock offset or a frame_id mix-up
            seen = min(self.infos.recent.values(), key=lambda info: abs(_ns(info) - _ns(image)))
            offset, frame = (_ns(seen) - _ns(image)) * 1e-9, seen.header.frame_id
            reason += f"; the nearest had stamp {stamp_text(stamp_of(seen))} ({offset:+.6f} s), frame {frame!r}"
        return Decision(image, tag=waiting.tag, reason=reason)


def _by_stamp(waiting: list[_Waiting]) -> list[_Waiting]:
    return sorted(waiting, key=lambda w: _ns(w.image))


def _ns(msg) -> int:
    sec, nanosec = stamp_of(msg)
    return sec * 1_000_000_000 + nanosec


def _same_frame(msg, image) -> bool:
    return not msg.header.frame_id or msg.header.frame_id == image.header.frame_id
