"""Checking what a user hands in, where it enters.

Every file a command or the node reads on a user's word (YAML configs and camera files,
checkpoints, ONNX graphs, engines and their sidecars, transformers folders, images, sparse depth,
calibration frames) passes here first, so a bad one fails at once with one line that names the
file, the field and what was expected, instead of deep inside a library:

* :func:`input_file`: the path is a regular file, not too large; a FIFO, socket or device is
  named as such and never opened (opening a FIFO blocks until someone writes to it).
* :func:`parse_yaml` / :func:`load_yaml`: bounded size, nesting and alias expansion (counted on
  the parser's event stream before anything is built, so a "billion laughs" file fails in
  milliseconds), duplicate keys refused, keys must be names.
* :func:`parse_json` / :func:`read_json`: bounded size and nesting, duplicate keys refused,
  NaN and Infinity refused.
* :func:`integer`, :func:`number`, :func:`numbers`, :func:`text`, :func:`boolean`: one field's
  type and range, as ``FILE: FIELD: expected ..., got ...``.
* :func:`check_weights`: tensors holding NaN or infinity are refused, naming the first.
* :func:`read_image` / :func:`read_npy`: bytes read by Python (OpenCV crashes on a path that is
  not UTF-8), the pixel count bounded from the header before anything is decoded.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import yaml

from depth_estimation_ros.core.errors import MAX_IMAGE_SIDE

MAX_TEXT_BYTES = 1 << 20  # configs, camera files, model configs, sidecars: a few kB in practice
MAX_NESTING = 64  # levels of lists and mappings
MAX_NODES = 100_000  # values once YAML aliases are expanded (what every later walk visits)
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE  # a 64 MP photo fits; one float32 plane is 256 MiB
MAX_IMAGE_BYTES = 1 << 30
DEFAULT_MAX_FRAME_PIXELS = 1 << 23  # a live frame's default bound: 8 MP, 4K UHD (3840x2160) fits

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))  # fmt: skip


def shown(path: str | os.PathLike) -> str:
    """``path`` as text that can always be printed: bytes that are not UTF-8 as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def cv2_path(path: str | os.PathLike, what: str) -> str:
    """``path`` for an OpenCV call that takes a file name (it crashes on names that are not UTF-8)."""
    text = os.fspath(path)
    if text != shown(text):
        raise ValueError(f"{what} {shown(text)}: the name holds bytes that are not UTF-8, which OpenCV cannot open; "
                         "rename it")  # fmt: skip
    return text


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def input_file(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> Path:
    """``path`` if it is a regular file of at most ``max_bytes``; else one line saying what it is."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        broken = " (a symbolic link to nothing)" if path.is_symlink() else ""
        raise FileNotFoundError(f"{what} not found: {shown(path)}{broken}") from None
    except OSError as exc:  # a folder on the way without permission, a symlink loop, a name too long
        raise OSError(f"{what} {shown(path)} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{what} {shown(path)} is a folder, expected a file")
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise ValueError(f"{what} {shown(path)} is {kind}, expected a regular file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{what} {shown(path)} is not readable (permission denied)")
    if max_bytes is not None and info.st_size > max_bytes:
        raise ValueError(f"{what} {shown(path)} is {_size(info.st_size)}, more than the {_size(max_bytes)} "
                         f"a {what} may be")  # fmt: skip
    return path


def read_bytes(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> bytes:
    """The content of a regular file, checked by :func:`input_file`."""
    path = input_file(path, what, max_bytes)
    # Non-blocking, and checked again on the open file: a FIFO swapped in meanwhile cannot block.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{what} {shown(path)} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(-1 if max_bytes is None else max_bytes + 1)
    finally:
        os.close(fd)
    if max_bytes is not None and len(data) > max_bytes:
        raise ValueError(f"{what} {shown(path)} is more than the {_size(max_bytes)} a {what} may be")
    return data


def read_text(path: str | os.PathLike, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    try:
        return read_bytes(path, what, max_bytes).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{shown(path)}: not a UTF-8 text file ({what} expected)") from None


# --------------------------------------------------------------------------- fields


def _got(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(where: str, expected: str, value) -> NoReturn:
    raise ValueError(f"{where}: expected {expected}, got {_got(value)}")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(value, where: str, low: int | None = 1, high: int | None = None) -> int:
    """An int (not a bool, not 3.0) in [low, high]."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or (low is not None and value < low) or (high is not None and value > high):
        bounds = [f"≥ {low}"] * (low is not None) + [f"≤ {high}"] * (high is not None)
        if low is not None and high is not None:
            bounds = [f"from {low} to {high}"]
        fail(where, " ".join(["an integer", *bounds]), value)
    return value


def number(value, where: str, low: float | None = None, high: float | None = None, above: float | None = None) -> float:
    """A finite int or float in [low, high] (and > ``above``)."""
    ok = _is_number(value) and math.isfinite(value)
    ok = ok and (low is None or value >= low) and (high is None or value <= high) and (above is None or value > above)
    if not ok:
        limits = ((">", above), ("≥", low), ("≤", high))
        bounds = [f"{sign} {limit:g}" for sign, limit in limits if limit is not None]
        fail(where, " ".join(["a finite number", *bounds]), value)
    return float(value)


def numbers(value, where: str, count: int | None = None, max_count: int | None = None) -> list[float]:
    """A list of finite numbers, of exactly ``count`` (or at most ``max_count``) entries."""
    size = f"{count} " if count is not None else ""
    expected = f"a list of {size}finite numbers" + (f" (at most {max_count})" if max_count is not None else "")
    if not isinstance(value, list | tuple) or not all(_is_number(v) and math.isfinite(v) for v in value):
        fail(where, expected, value)
    if (count is not None and len(value) != count) or (max_count is not None and len(value) > max_count):
        raise ValueError(f"{where}: expected {expected}, got {len(value)} values")
    return [float(v) for v in value]


def text(value, where: str) -> str:
    if not isinstance(value, str):
        fail(where, "a string", value)
    return value


def boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        fail(where, "true or false", value)
    return value


def mapping(value, where: str) -> dict:
    if not isinstance(value, dict):
        fail(where, "a mapping", value)
    return value


def non_finite(value, where: str = "") -> list[str]:
    """Paths (``a.b[2]``) of NaN or infinite floats in nested dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return [where or "value"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{where}[{i}]")]
    return []


def nesting(value) -> int:
    """Levels of lists and mappings in ``value``, counted without recursion (it may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list | tuple) else None
        if children is not None:
            deepest = max(deepest, level)
            if level <= MAX_NESTING:
                stack.extend((child, level + 1) for child in children)
    return deepest


# --------------------------------------------------------------------------- YAML

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: 10× faster


class _Loader(_Base):
    """``yaml.SafeLoader`` that reads ``1e-4`` as a number (YAML 1.1 insists on ``1.0e-4``) and
    refuses duplicate keys and keys that are not names."""

    source = "YAML"

    def construct_mapping(self, node, deep=False):
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base``: keys after it override on purpose
                continue
            line = key_node.start_mark.line + 1
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ValueError(f"{self.source}: key {_got(key)} (line {line}): expected a name (quote it), "
                                 f"got {type(key).__name__}")  # fmt: skip
            if key in seen:
                raise ValueError(f"{self.source}: duplicate key {key!r} (line {line}; first on line {seen[key]})")
            seen[key] = line
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _check_events(text: str, source: str) -> None:
    """Nesting and expanded size from the event stream (iterative, nothing built yet)."""
    loader = _Loader(text)
    nodes, expanded, open_ = 0, {}, []  # open_: (anchor, node count at its start) of open collections
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.CollectionStartEvent):
                open_.append((event.anchor, nodes))
                nodes += 1
                if len(open_) > MAX_NESTING:
                    raise ValueError(f"{source}: nested deeper than {MAX_NESTING} levels (line {line})")
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, start = open_.pop()
                if anchor is not None:
                    expanded[anchor] = nodes - start
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if event.anchor is not None:
                    expanded[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                if any(anchor == event.anchor for anchor, _ in open_):
                    raise ValueError(f"{source}: alias *{event.anchor} (line {line}) refers to itself")
                nodes += expanded.get(event.anchor, 1)
            if nodes > MAX_NODES:
                raise ValueError(f"{source}: more than {MAX_NODES} values once aliases are expanded (line {line}); "
                                 "not a configuration file")  # fmt: skip
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str = "YAML"):
    """YAML text to plain data: ``safe_load`` semantics, ``1e-4`` a number, bounded size, nesting
    and expansion, duplicate keys refused; every error a ValueError starting with ``source``."""
    if len(text) > MAX_TEXT_BYTES or len(text.encode("utf-8", "surrogateescape")) > MAX_TEXT_BYTES:
        raise ValueError(f"{source}: more than {_size(MAX_TEXT_BYTES)} of YAML; not a configuration file")
    try:
        _check_events(text, source)
        loader = _Loader(text)
        loader.source = source
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None


def load_yaml(path: str | os.PathLike, what: str):
    """The data of a YAML file a user names (see :func:`parse_yaml`)."""
    return parse_yaml(read_text(path, what), shown(path))


# --------------------------------------------------------------------------- JSON


def parse_json(text: str, source: str, finite: bool = True):
    """JSON text to data: duplicate keys refused, nesting bounded and (``finite``) NaN/Infinity refused."""

    def unique(pairs):
        data = {}
        for key, value in pairs:
            if key in data:
                raise ValueError(f"{source}: duplicate key {key!r}")
            data[key] = value
        return data

    try:
        data = json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise ValueError(f"{source}: nested deeper than {MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON: {exc}") from None
    if nesting(data) > MAX_NESTING:
        raise ValueError(f"{source}: nested deeper than {MAX_NESTING} levels")
    if finite and (bad := non_finite(data)):
        raise ValueError(f"{source}: {bad[0]} is not finite (NaN or Infinity): expected a finite number")
    return data


def read_json(path: str | os.PathLike, what: str, max_bytes: int = MAX_TEXT_BYTES, finite: bool = True) -> dict:
    """The JSON object of a file a user hands in (see :func:`parse_json`)."""
    data = parse_json(read_text(path, what, max_bytes), shown(path), finite)
    if not isinstance(data, dict):
        raise ValueError(f"{shown(path)}: expected a JSON object ({what}), got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- weights


def _non_finite_count(tensor) -> int:
    if hasattr(tensor, "is_floating_point"):  # torch, without importing it here
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.is_meta:
            return 0
        import torch

        return int(tensor.numel() - torch.isfinite(tensor).sum())
    array = np.asarray(tensor)
    if array.dtype.kind not in "fc":
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def check_weights(source: str, tensors: Iterable[tuple[str, Any]]) -> None:
    """Refuse weights holding NaN or infinity: such a model gives NaN depth for every frame."""
    bad = [(name, count) for name, tensor in tensors if (count := _non_finite_count(tensor))]
    if bad:
        name, count = bad[0]
        more = f" ({len(bad) - 1} more tensors too)" if len(bad) > 1 else ""
        raise ValueError(f"{source}: weight {name} holds {count} NaN/infinite values{more}; "
                         "such a model cannot give finite depth")  # fmt: skip


# --------------------------------------------------------------------------- images


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header without decoding it; None where Pillow cannot tell
    (OpenCV then decides, within its own limit of 2³⁰ pixels)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own "decompression bomb" warning: bounded below
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit, itself above ours
        found = re.search(r"\((\d+) pixels\)", str(exc))
        return (int(found.group(1)), 1) if found else (MAX_IMAGE_PIXELS + 1, 1)
    except Exception:
        return None


def read_image(path: str | os.PathLike, what: str = "image", flags: int | None = None) -> np.ndarray:
    """An image file decoded by OpenCV (``flags``: default ``IMREAD_COLOR``, BGR) from bytes read here."""
    import cv2

    data = read_bytes(path, what, MAX_IMAGE_BYTES)
    if not data:
        raise ValueError(f"cannot read {what} {shown(path)}: the file is empty")
    size = image_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        claimed = f"{size[0]}x{size[1]} pixels" if size[1] > 1 else f"{size[0]} pixels"
        raise ValueError(f"{what} {shown(path)} is {claimed}, more than the {MAX_IMAGE_PIXELS} "
                         f"({MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}) an input image may have")  # fmt: skip
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if flags is None else flags)
    if image is None:
        raise ValueError(f"cannot read {what} {shown(path)} (not an image, truncated or corrupt)")
    return image


def read_npy(path: str | os.PathLike, what: str, max_elements: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """A ``.npy`` array, its header checked first: no objects, at most ``max_elements``, and the
    file as long as the header says (a lying header cannot make numpy allocate gigabytes)."""
    fmt = np.lib.format
    path = input_file(path, what)
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
            if header is None:
                raise ValueError(f"version {version} of the format")
            shape, _, dtype = header(f)
        except ValueError as exc:
            raise ValueError(f"cannot read {what} {shown(path)}: not a .npy array ({exc})") from None
        elements = math.prod(shape)
        if dtype.hasobject or elements > max_elements:
            raise ValueError(f"{what} {shown(path)} holds {dtype} {list(shape)}: expected at most {max_elements} "
                             "numbers")  # fmt: skip
        if os.fstat(f.fileno()).st_size - f.tell() < elements * dtype.itemsize:
            raise ValueError(f"cannot read {what} {shown(path)}: shorter than its header says (truncated)")
        f.seek(0)
        return np.load(f, allow_pickle=False)
