"""The ``reenact`` command line.

Sub-commands register themselves in ``COMMANDS``: each is a module-level function pair
``add_arguments(parser)`` / ``run(args) -> int``. Errors the user can fix (``ReenactError``,
bad options, an output path that cannot be written) print one line, ``reenact CMD: error: ...``,
and exit with status 2; no traceback. SIGTERM and SIGHUP stop a command the way Ctrl-C does
(``Terminated`` is a ``KeyboardInterrupt``): every writer finalises or removes its file.
"""
from __future__ import annotations

import argparse
import logging
import contextlib
import math
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Callable

from .errors import ReenactError, Terminated


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    examples: str = ""


COMMANDS: dict[str, Command] = {}


def register(cmd: Command) -> Command:
    if cmd.name in COMMANDS:
        raise ValueError(f"command {cmd.name!r} registered twice")
    COMMANDS[cmd.name] = cmd
    return cmd


def _load_commands() -> None:
    from .commands import demo, engines, evaluate, prepare, run, track, train  # noqa: F401  (each registers itself)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``reenact CMD: error: MESSAGE (see reenact CMD --help)``."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- option types shared by the commands -----------------------------------------------------------
def number_in(flag: str, lo: float, hi: float, *, integer: bool = False, lo_open: bool = False,
              hi_open: bool = False) -> Callable[[str], float | int]:
    """An argparse ``type`` accepting a number in a range (argparse's error names the flag)."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    what = "an integer" if integer else "a number"
    rng = f"{left}{lo:g}, {hi:g}{right}" if math.isfinite(hi) else (f">= {lo:g}" if not lo_open else f"> {lo:g}")

    def parse(text: str):
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} {rng}, got {text!r}") from None
        if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            raise argparse.ArgumentTypeError(f"must be {what} {rng}, got {text!r}")
        return v
    return parse


def width_type(flag: str = "--width") -> Callable[[str], float]:
    """Network width multipliers: (0, 4] (1.0 = the paper's sizes)."""
    return number_in(flag, 0.0, 4.0, lo_open=True)


@contextlib.contextmanager
def stop_on_signals():
    """While a command runs, SIGTERM / SIGHUP raise ``Terminated`` in the main thread (as Ctrl-C
    raises KeyboardInterrupt), so outputs are finalised or removed instead of left half-written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]

    def handler(signum, _frame):
        raise Terminated(signal.Signals(signum).name)

    old = {}
    for s in wanted:
        try:
            old[s] = signal.signal(s, handler)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for s, h in old.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(s, h)


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = ArgumentParser(prog="reenact", description="Real-time face reenactment engine.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.subparsers = {}  # type: ignore[attr-defined]
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, epilog=cmd.examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_arguments(p)
        parser.subparsers[cmd.name] = p  # type: ignore[attr-defined]
    return parser


def main(argv: list[str] | None = None) -> int:
    # MediaPipe's native logging is noisy on stderr; keep warnings and errors only.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # name the sub-command in the message, as its own options' errors do
            sp = parser.subparsers.get(getattr(args, "command", None) or "", parser)  # type: ignore[attr-defined]
            sp.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help (0) or a usage error (2, already printed as one line)
        return e.code if isinstance(e.code, int) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    from .tracking.model_file import set_face_model

    set_face_model(None)  # a --face-model of an earlier in-process call must not leak into this one
    name = args.command
    if name == "engines" and getattr(args, "action", None):
        name = f"engines {args.action}"
    try:
        with stop_on_signals():
            return int(COMMANDS[args.command].run(args) or 0)
    except ReenactError as e:
        print(f"reenact {name}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Terminated as e:
        print(f"reenact {name}: terminated ({e}); partial outputs were finalised or removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"reenact {name}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        # a file the command had to read or write failed at the operating system (read-only
        # folder, a folder where a file is wanted, a full disk): the user can fix it
        if e.filename is None:
            raise
        where = e.filename if e.filename2 is None else f"{e.filename} -> {e.filename2}"
        print(f"reenact {name}: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
