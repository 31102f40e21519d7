"""The one error boundary of every command: ``error: ...`` on stderr, exit 2 for usage, 1 otherwise.

A user's mistake or an OS error never shows a traceback; ``--debug`` (anywhere on the command line)
or ``DEPTH_ESTIMATION_DEBUG=1`` shows it. SIGTERM is handled like Ctrl-C: it unwinds the command,
so every ``finally`` removes the output staged so far, and the exit status is 128 + the signal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable

DEBUG_FLAG = "--debug"
DEBUG_ENV = "DEPTH_ESTIMATION_DEBUG"


class UsageError(ValueError):
    """An option value or combination the command cannot accept (exit status 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that cleanup runs as for Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread while the block
    runs, as Ctrl-C does. Installed before ``rclpy.init``, it is the handler rclpy's own chains to,
    so a node stops within a bytecode of SIGTERM even while it loads a model (rclpy alone only shuts
    its context down, which nothing looks at until the executor spins)."""
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signal_pipe():
    """Yields ``arrived()``: whether SIGINT or SIGTERM has come since the block began, answerable
    from any thread and while the main thread is inside a long C++ call (a TensorRT build), when
    Python's own handler cannot run until the call returns. The signal still reaches that handler
    afterwards: this only lets a library's progress callback see it and cancel its work. Read from
    the wakeup file descriptor the interpreter's C-level handler writes each signal number to."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: no signal is seen
        previous = None
    seen = False

    def arrived() -> bool:
        nonlocal seen
        with contextlib.suppress(BlockingIOError, OSError):
            seen = seen or bool(os.read(read_fd, 64))
        return seen

    try:
        yield arrived
    finally:
        if previous is not None:
            signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)


_deferring = False


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM while the block runs; re-raise the one that arrived once it has ended.

    A signal raised inside a C++ writer (``torch.save``, ``onnx.save``, the ORT quantiser) comes out
    as an internal ``RuntimeError``; deferred, it unwinds the command cleanly right after the write,
    whose ``finally`` then removes the temporary. The delay is bounded by the one write (a large ONNX
    export may take a minute). Outside the main thread, or nested, signals are left alone."""
    global _deferring
    if _deferring:
        yield
        return
    arrived: list[int] = []
    previous = {}

    def hold(signum, frame):
        if signum == signal.SIGINT and signum in arrived:  # Ctrl-C twice: the user will not wait
            raise KeyboardInterrupt()
        arrived.append(signum)

    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, hold)
    except ValueError:  # not the main thread
        previous.clear()
    _deferring = bool(previous)
    try:
        yield
    finally:
        _deferring = False
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if arrived:
            raise Terminated() if signal.SIGTERM in arrived else KeyboardInterrupt()


def _interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt a library wrapped into its own error (torch does), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def reraise_interrupt(exc: BaseException) -> None:
    """Raise the Ctrl-C/SIGTERM a library wrapped into ``exc``, if any: for handlers that would
    otherwise take it for a failure and go on (a fallback, a retry)."""
    interrupt = _interrupt_in(exc)
    if interrupt is not None:
        raise interrupt from None


def debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    """(debug?, argv without ``--debug``)."""
    rest = [a for a in argv if a != DEBUG_FLAG]
    return len(rest) != len(argv) or os.environ.get(DEBUG_ENV, "") not in ("", "0"), rest


def run_guarded(prog: str, command: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run ``command(argv)`` behind the boundary; returns the exit status."""
    debug, argv = debug_requested(sys.argv[1:] if argv is None else list(argv))
    try:
        with sigterm_interrupts():
            try:
                return command(argv)
            except Exception as exc:  # a wrapped Ctrl-C/SIGTERM is still one, not an error
                reraise_interrupt(exc)
                raise
    except Terminated:
        print(f"{prog}: terminated; output staged so far was removed", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; output staged so far was removed", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {describe(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


def run_command(
    name: str,
    module_doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
    argv: list[str] | None = None,
) -> int:
    """Every subcommand's ``main``: its parser (``add_arguments``) and ``run`` behind the boundary,
    as ``depth-estimation NAME``, described by the first line of its module's docstring."""

    def command(rest: list[str]) -> int:
        description = (module_doc or "").strip().split("\n")[0] or None
        parser = argparse.ArgumentParser(prog=f"depth-estimation {name}", description=description)
        add_arguments(parser)
        return run(parser.parse_args(rest))

    return run_guarded(f"depth-estimation {name}", command, argv)


def describe(exc: BaseException) -> str:
    """One line for the user: our errors' own message; the type and a hint for anything unexpected."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    if isinstance(exc, ValueError | OSError | RuntimeError) and text:
        return text
    return f"{type(exc).__name__}: {text} (unexpected; run with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)"


# ------------------------------------------------------------------ argparse types that refuse NaN/inf


def _parse(text: str, kind: type, test, expected: str):
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if not test(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def finite_float(text: str) -> float:
    return _parse(text, float, lambda v: True, "a finite number")


def positive_float(text: str) -> float:
    return _parse(text, float, lambda v: v > 0, "a positive number")


def unit_float(text: str) -> float:
    return _parse(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def positive_int(text: str) -> int:
    return _parse(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _parse(text, int, lambda v: v >= 0, "a non-negative integer")


# Larger than any camera or network input in use, small enough that one float32 plane (256 MiB) is
# still an allocation a machine survives (8K video fits): a typo like 100000 is refused, not attempted.
MAX_IMAGE_SIDE = 8192


def image_side(text: str) -> int:
    return _parse(text, int, lambda v: 1 <= v <= MAX_IMAGE_SIDE, f"an image side of 1 to {MAX_IMAGE_SIDE} pixels")


@contextlib.contextmanager
def quiet_loggers(*names: str):
    """Silence libraries' own logging (a failed opset conversion logs a traceback); the outcome is
    checked and reported here instead."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
