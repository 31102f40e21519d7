"""Reading user files safely, and writing files that appear only when complete.

Every file a command writes goes through :func:`staged_file`: a uniquely named temporary in the
destination folder, created exclusively (``O_EXCL``, so a planted file or symlink is never
followed), given the permissions the umask allows (``mkstemp`` alone gives 0600), then renamed to
its final name. An existing file is replaced only with ``overwrite=True``; otherwise the rename is
a hard link, which fails if the name appeared meanwhile.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-4`` as a number (YAML 1.1 insists on ``1.0e-4``)."""


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


def parse_yaml(text: str):
    """YAML text to plain data (``safe_load`` semantics, exponent numbers are numbers)."""
    return yaml.load(text, Loader=_Loader)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def load_yaml_mapping(path: str | os.PathLike, what: str) -> dict:
    """A YAML file that must hold a mapping, read with a safe loader (no arbitrary objects)."""
    path = Path(path)
    try:
        data = parse_yaml(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path} is a folder, expected a YAML file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file ({what} expected)") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping ({what}), got {type(data).__name__}")
    return data


def non_finite(value, where: str = "") -> list[str]:
    """Paths (``a.b[2]``) of NaN or infinite floats in nested dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return [where or "value"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{where}[{i}]")]
    return []


# --------------------------------------------------------------------------- writing


def is_hub_id(text: str) -> bool:
    """``owner/name``, as Hugging Face Hub ids are (a relative path of two parts looks the same:
    callers check the file system first)."""
    return re.fullmatch(r"\w[\w.-]*/\w[\w.-]*", text) is not None


def umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def refuse_existing(path: str | os.PathLike, what: str = "output", hint: str = "pass --overwrite to replace it"):
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise FileExistsError(f"{what} {path} exists already; not overwriting it ({hint})")


@contextmanager
def staged_files(paths: Iterable[str | os.PathLike], overwrite: bool = False) -> Iterator[dict[Path, Path]]:
    """Final path → a fresh temporary beside it (same suffix, so writers pick the same format);
    all renamed when the block completes, all removed in every other case."""
    paths = [Path(p) for p in paths]
    staged: dict[Path, Path] = {}
    try:
        for path in paths:
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a folder, expected a file name to write")
            if not overwrite:
                refuse_existing(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
            os.close(fd)
            staged[path] = Path(name)
        try:
            yield staged
        except OSError as exc:  # say where, and say when the device is full (numpy's short writes do not)
            folder = paths[0].parent
            full = shutil.disk_usage(folder).free == 0 and "No space left" not in str(exc)
            raise OSError(f"cannot write into {folder}: {exc}{' (no space left on the device)' * full}") from exc
        mode = 0o666 & ~umask()
        for path, tmp in staged.items():
            os.chmod(tmp, mode)
            publish(tmp, path, overwrite)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


@contextmanager
def staged_file(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """A fresh temporary path beside ``path``, renamed to ``path`` when the block completes."""
    with staged_files([path], overwrite) as staged:
        yield next(iter(staged.values()))


def publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``path``; without ``overwrite`` never replace a file that exists."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists: no window between a check and the rename
    except FileExistsError:
        raise FileExistsError(f"output {path} exists already; not overwriting it") from None
    except OSError:  # a filesystem without hard links
        refuse_existing(path)
        os.replace(tmp, path)
    else:
        tmp.unlink()


def write_with(path: str | os.PathLike, write: Callable[[Path], object], overwrite: bool = False) -> Path:
    """``write(temporary_path)`` then rename; ``write`` returning False (as cv2.imwrite does) is an error."""
    with staged_file(path, overwrite) as tmp:
        if write(tmp) is False:
            raise OSError(f"cannot write {path} (the encoder failed: unsupported format or no space?)")
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return write_with(path, write, overwrite)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    return write_bytes(path, text.encode(), overwrite)


def imwrite(path: str | os.PathLike, image, overwrite: bool = False) -> Path:
    """``cv2.imwrite`` whose failure is an error, staged like every other file."""
    import cv2

    return write_with(path, lambda tmp: cv2.imwrite(str(tmp), image), overwrite)


# --------------------------------------------------------------------------- inputs vs outputs


def overlaps(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths are the same, or one lies inside the other (symlinks resolved)."""
    a, b = Path(a).resolve(), Path(b).resolve()
    return a == b or a in b.parents or b in a.parents


def refuse_overlap(output: str | os.PathLike, inputs: Iterable[tuple[str, str | os.PathLike | None]]) -> None:
    """Refuse an output that is, contains or lies inside any of the named inputs."""
    for what, path in inputs:
        if path is not None and overlaps(output, path):
            from .errors import UsageError

            raise UsageError(f"output {output} overlaps the {what} {path}; choose an output outside it")


def folder_frames(directory: str | os.PathLike, limit: int) -> Iterator:
    """(H, W, 3) uint8 RGB frames from the images of a folder (sorted by name)."""
    import cv2

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"calibration folder not found: {directory}")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ValueError(f"no calibration images ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    for file in files:
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read calibration image {file}")
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
