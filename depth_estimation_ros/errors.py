"""The one error boundary of every command: ``error: ...`` on stderr, exit 2 for usage, 1 otherwise.

A user's mistake or an OS error never shows a traceback; ``--debug`` (anywhere on the command line)
or ``DEPTH_ESTIMATION_DEBUG=1`` shows it. SIGTERM is handled like Ctrl-C: it unwinds the command,
so every ``finally`` removes the output staged so far, and the exit status is 128 + the signal.
"""

from __future__ import annotations

import contextlib
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


def debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    """(debug?, argv without ``--debug``)."""
    rest = [a for a in argv if a != DEBUG_FLAG]
    return len(rest) != len(argv) or os.environ.get(DEBUG_ENV, "") not in ("", "0"), rest


def run_guarded(prog: str, command: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run ``command(argv)`` behind the boundary; returns the exit status."""
    debug, argv = debug_requested(sys.argv[1:] if argv is None else list(argv))
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return command(argv)
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
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def describe(exc: BaseException) -> str:
    """One line for the user: our errors' own message; the type and a hint for anything unexpected."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    if isinstance(exc, ValueError | OSError | RuntimeError) and text:
        return text
    return f"{type(exc).__name__}: {text} (unexpected; run with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)"


# ------------------------------------------------------------------ argparse types that refuse NaN/inf


def finite_float(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    import argparse

    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def unit_float(text: str) -> float:
    import argparse

    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value
