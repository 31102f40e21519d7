"""Reading user files safely, and writing files that appear only when complete.

Every file a command writes goes through :func:`staged_file`: a uniquely named temporary in the
destination folder, created exclusively (``O_EXCL``, so a planted file or symlink is never
followed), given the permissions the umask allows (it is created 0600), then renamed to
its final name. An existing file is replaced only with ``overwrite=True``; otherwise the rename is
a hard link, which fails if the name appeared meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from depth_estimation_ros.core.errors import signals_deferred
from depth_estimation_ros.core.validation import load_yaml, read_image, shown

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def load_yaml_mapping(path: str | os.PathLike, what: str) -> dict:
    """A YAML file that must hold a mapping of names, read by :func:`validation.load_yaml` (safe
    loading, bounded size, nesting and aliases, no duplicate keys)."""
    data = load_yaml(path, what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{shown(path)}: expected a mapping ({what}), got {type(data).__name__}")
    return data


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


# Temporaries are named ``.depth-estimation-tmp.PID.TOKEN.NAME`` (TOKEN: 8 random hex digits; NAME
# keeps the final name's suffix, so writers pick the same format): no other program makes such
# names, and the pid tells a later run whether their writer is still alive. A staging *folder* also
# holds STAGING_MARK, so the sweep never removes a folder this project did not make, whatever its name.
TEMP_PREFIX = ".depth-estimation-tmp"
TEMPORARY = re.compile(rf"{re.escape(TEMP_PREFIX)}\.(?P<pid>\d+)\.[0-9a-f]{{8}}\.")
STAGING_MARK = ".depth-estimation-staging"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def temporary_name(name: str) -> str:
    """A name for a temporary of ``name`` that only this project makes, carrying this process's pid."""
    return f"{TEMP_PREFIX}.{os.getpid()}.{secrets.token_hex(4)}.{name}"


def _claim(folder: Path, name: str, create: Callable[[Path], object]) -> Path:
    """A fresh temporary path for ``name`` in ``folder``, made by ``create`` (which fails if it exists)."""
    while True:
        path = folder / temporary_name(name)
        try:
            create(path)
        except FileExistsError:  # the 32-bit token collided: draw again
            continue
        return path


def create_temporary(folder: Path, name: str) -> Path:
    """A new, empty temporary file for ``name`` in ``folder``, created exclusively (``O_EXCL``: a
    planted file or symlink is never followed)."""
    return _claim(folder, name, lambda path: os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)))


def mark_staging(folder: Path) -> Path:
    """Mark ``folder`` as this project's staging, which :func:`remove_stale` may sweep once its pid is dead."""
    (folder / STAGING_MARK).write_text(f"{os.getpid()}\n")
    return folder


def create_staging_folder(folder: Path, name: str) -> Path:
    """A new staging folder for ``name`` in ``folder``, marked as this project's."""
    return mark_staging(_claim(folder, name, lambda path: path.mkdir(mode=0o700)))


def remove_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed run of this project left in ``folder``: files named by
    :func:`temporary_name`, and folders so named that hold :data:`STAGING_MARK`, whose process is
    gone. A live run's are kept, and nothing else is ever touched: a user's file or folder of any
    other name, or of that name without the mark, stays."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in Path(folder).iterdir():
            match = TEMPORARY.match(entry.name)
            if match is None or pid_alive(int(match["pid"])):
                continue
            if entry.is_symlink():  # never one of ours
                continue
            if entry.is_file():
                entry.unlink(missing_ok=True)
            elif entry.is_dir() and (entry / STAGING_MARK).is_file():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                continue
            removed.append(entry)
    return removed


_SWEPT: set[str] = set()  # folders this process has swept: a dead run's leftovers predate our first write


def remove_stale_once(folder: str | os.PathLike) -> None:
    """:func:`remove_stale` the first time this process writes to ``folder``: a command writing many
    files (predict, synth) scans its output folder once, not once per file."""
    key = os.path.abspath(folder)
    if key not in _SWEPT:
        _SWEPT.add(key)
        remove_stale(folder)


@contextmanager
def staged_files(
    paths: Iterable[str | os.PathLike], overwrite: bool = False, defer_signals: bool = True
) -> Iterator[dict[Path, Path]]:
    """Final path → a fresh temporary beside it (same suffix, so writers pick the same format);
    all renamed when the block completes, all removed in every other case.

    ``defer_signals``: hold Ctrl-C/SIGTERM for the whole block (a block that only writes); a block
    that also computes for long (loading, tracing) passes False and defers around its write itself."""
    paths = [Path(p) for p in paths]
    staged: dict[Path, Path] = {}
    try:
        for path in paths:
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a folder, expected a file name to write")
            if not overwrite:
                refuse_existing(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_once(path.parent)
            staged[path] = create_temporary(path.parent, path.name)
        try:
            with signals_deferred() if defer_signals else contextlib.nullcontext():  # never inside a C++ writer
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
def staged_file(path: str | os.PathLike, overwrite: bool = False, defer_signals: bool = True) -> Iterator[Path]:
    """A fresh temporary path beside ``path``, renamed to ``path`` when the block completes."""
    with staged_files([path], overwrite, defer_signals) as staged:
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
            from depth_estimation_ros.core.errors import UsageError

            raise UsageError(f"output {output} overlaps the {what} {path}; choose an output outside it")


def folder_frames(directory: str | os.PathLike, limit: int) -> Iterator:
    """(H, W, 3) uint8 RGB frames from the images of a folder (sorted by name), each checked as
    every input image is (a regular file, a bounded size; never a FIFO opened)."""
    import cv2

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"calibration folder not found: {shown(directory)}")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ValueError(f"no calibration images ({', '.join(IMAGE_SUFFIXES)}) in {shown(directory)}")
    for file in files:
        yield cv2.cvtColor(read_image(file, "calibration image"), cv2.COLOR_BGR2RGB)
