"""The ``reenact`` command line.

Each sub-command is one typed options dataclass (its fields are the options: types, defaults,
``Literal`` choices, ``Range`` bounds and the help text in the field docstrings) and a
``run(options) -> int`` function, registered in ``COMMANDS``. tyro turns the dataclass into the
command's parser. Parsing imports nothing heavy (no torch, MediaPipe or gradio): a command imports
what it needs when it runs, so ``--help`` is instant.

Errors the user can fix (``ReenactError``, bad options, an output path that cannot be written)
print one line, ``reenact CMD: error: ...``, and exit with status 2; no traceback. SIGTERM and
SIGHUP stop a command the way Ctrl-C does (``Terminated`` is a ``KeyboardInterrupt``): every writer
finalises or removes its file.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
import signal
import sys
import threading
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable

import tyro

from . import __version__
from .errors import ReenactError, Terminated


# -- typed options -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option, as ``Annotated`` metadata: ``Annotated[float, Range(0, 4, lo_open=True)]``.
    ``check_ranges`` checks every such field of an options object; ``None`` (unset) always passes."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        if math.isfinite(self.lo) and math.isfinite(self.hi):
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if math.isfinite(self.lo):
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{'<' if self.hi_open else '<='} {self.hi:g}"

    def contains(self, v: float) -> bool:
        if not math.isfinite(v):
            return False
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open else v <= self.hi
        return above and below


def flag_name(field: dataclasses.Field) -> str:
    return "--" + field.name.replace("_", "-")


def check_ranges(opts: Any) -> None:
    """Raise ``ReenactError("--flag must be in [lo, hi], got v")`` for the first field out of its ``Range``."""
    hints = typing.get_type_hints(type(opts), include_extras=True)
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        if v is None or isinstance(v, bool):
            continue
        for rng in getattr(hints.get(f.name), "__metadata__", ()):
            if isinstance(rng, Range) and not rng.contains(float(v)):
                raise ReenactError(f"{flag_name(f)} must be {rng.describe()}, got {v:g}")


@dataclass(kw_only=True)
class CommandOptions:
    """Options every command has."""

    verbose: Annotated[bool, tyro.conf.arg(aliases=("-v",)), tyro.conf.FlagCreatePairsOff] = False
    """log more detail"""

    def check(self) -> None:
        """Checks between options (ranges are checked before, from the ``Range`` annotations)."""


@dataclass(frozen=True)
class Command:
    name: str                   # one or two words: "run", "engines build"
    help: str
    options: type               # a CommandOptions dataclass
    run: Callable[[Any], int]
    examples: str = ""


COMMANDS: dict[str, Command] = {}


def register(cmd: Command) -> Command:
    if cmd.name in COMMANDS:
        raise ValueError(f"command {cmd.name!r} registered twice")
    COMMANDS[cmd.name] = cmd
    return cmd


def _load_commands() -> None:
    from .commands import demo, engines, evaluate, prepare, run, track, train  # noqa: F401  (each registers itself)


# -- parsing -------------------------------------------------------------------------------------------
class UsageError(ReenactError):
    """A command line that does not parse (``(see reenact CMD --help)`` is appended)."""


class _ParseFailure(Exception):
    pass


def _argument_name(arg: Any) -> str:
    try:
        return str(arg.display_name())
    except Exception:
        return "an argument"


def _event_message(event: Any) -> str | None:
    """One line for a tyro parse-failure event (None: let tyro render it, and collapse that)."""
    kind = type(event).__name__
    if kind == "UnrecognizedArgs":
        return f"unrecognized arguments: {' '.join(event.tokens)}"
    if kind == "InvalidChoice":
        name = _argument_name(event.argument).lstrip("-")
        return f"unknown {name} {event.value!r}; choose from {', '.join(event.choices)}"
    if kind == "MissingArgs":
        names = [_argument_name(a.arg) for a in event.missing_arguments]
        return f"the following arguments are required: {', '.join(names)}"
    if kind == "BadValue":
        name = _argument_name(event.argument)
        if event.offending_value is not None:
            return f"argument {name}: unexpected value {event.offending_value!r}"
        return f"argument {name}: expected a value"
    if kind == "InstantiationFailure":
        msg = " ".join(str(event.message).split("\n\n")[0].split())
        if event.argument is not None:
            name = _argument_name(event.argument)
            if name not in msg:
                msg = f"argument {name}: {msg}"
        return msg
    return None


def _collapse(rendered: str) -> str:
    """tyro's boxed error text as one line (the fallback for events without a message of ours)."""
    lines = []
    for ln in rendered.splitlines():
        ln = ln.strip().strip("│╭╮╰╯").strip()
        if not ln or set(ln) <= set("─━-"):
            if lines:
                break
            continue
        if ln.startswith("─") or "For full helptext" in ln:
            break
        lines.append(ln)
    return " ".join(" ".join(lines).split()) or "invalid command line"


def parse(name: str, argv: list[str]):
    """Parse ``argv`` (after the command's name) into the command's options object, or raise
    ``UsageError``. ``--help`` prints the help and raises ``SystemExit(0)``."""
    cmd = COMMANDS[name]
    prog = f"reenact {name}"

    def hook(event):
        msg = _event_message(event)
        if msg is not None:
            raise _ParseFailure(msg)

    hook_ctx = contextlib.nullcontext()
    with contextlib.suppress(ImportError, AttributeError):
        from tyro import _errors  # an experimental hook: without it the rendered box is collapsed

        hook_ctx = _errors.on_parse_error(hook)
    description = cmd.help + (f"\n\n{cmd.examples}" if cmd.examples else "")
    err = io.StringIO()
    try:
        with hook_ctx, contextlib.redirect_stderr(err):
            opts = tyro.cli(cmd.options, args=argv, prog=prog, description=description)
    except _ParseFailure as e:
        raise UsageError(f"{e} (see {prog} --help)") from None
    except SystemExit as e:
        if e.code in (0, None):
            sys.stderr.write(err.getvalue())
            raise
        raise UsageError(f"{_lower_first(_collapse(err.getvalue()))} (see {prog} --help)") from None
    check_ranges(opts)
    opts.check()
    return opts


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def _root_help() -> str:
    width = max(len(n) for n in COMMANDS)
    rows = "\n".join(f"  {n:<{width}}  {c.help}" for n, c in COMMANDS.items())
    return (f"usage: reenact [-h] [--version] [-v] COMMAND [OPTIONS]\n\n"
            f"Real-time face reenactment engine.\n\ncommands:\n{rows}\n\n"
            f"options:\n  -h, --help     show this help and exit\n  --version      print the version and exit\n"
            f"  -v, --verbose  log more detail (also after the command)\n\n"
            f"'reenact COMMAND --help' lists a command's options.\n")


def _split_command(argv: list[str]) -> tuple[str | None, list[str], bool]:
    """(command name, its arguments, verbose given before the command)."""
    verbose = False
    rest = list(argv)
    while rest and rest[0] in ("-v", "--verbose"):
        verbose = True
        rest.pop(0)
    if not rest:
        return None, [], verbose
    if len(rest) >= 2 and f"{rest[0]} {rest[1]}" in COMMANDS:
        return f"{rest[0]} {rest[1]}", rest[2:], verbose
    return rest[0], rest[1:], verbose


# -- extras ----------------------------------------------------------------------------------------
EXTRAS = {"gradio": "demo", "pandas": "demo", "tensorboard": "train", "matplotlib": "eval", "dlib": "eval",
          "face_recognition_models": "eval", "tensorrt_rtx": "tensorrt"}


def _missing_extra(e: ModuleNotFoundError) -> str | None:
    top = (e.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"this needs {top}, which the core install leaves out: pip install \"reenact[{extra}]\""


# -- signals ---------------------------------------------------------------------------------------
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


def main(argv: list[str] | None = None) -> int:
    # MediaPipe's native logging is noisy on stderr; keep warnings and errors only.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    _load_commands()
    if argv[:1] == ["--version"]:
        print(f"reenact {__version__}")
        return 0
    name, rest, verbose = _split_command(argv)
    if name is None or name in ("-h", "--help"):
        print(_root_help(), end="")
        return 0
    if name not in COMMANDS:
        subs = [n.split()[1] for n in COMMANDS if n.split()[0] == name]
        if subs:
            what = f"choose an action: {', '.join(subs)}" + (f"; unknown action {rest[0]!r}" if rest else "")
            print(f"reenact {name}: error: {what} (see reenact {name} {subs[0]} --help)", file=sys.stderr)
        else:
            print(f"reenact: error: unknown command {name!r}; choose from "
                  f"{', '.join(sorted({n.split()[0] for n in COMMANDS}))} (see reenact --help)", file=sys.stderr)
        return 2
    try:
        opts = parse(name, rest)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except ReenactError as e:
        print(f"reenact {name}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if (verbose or opts.verbose) else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from .tracking.model_file import set_face_model

    set_face_model(None)  # a --face-model of an earlier in-process call must not leak into this one
    try:
        with stop_on_signals():
            return int(COMMANDS[name].run(opts) or 0)
    except ReenactError as e:
        print(f"reenact {name}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        msg = _missing_extra(e)
        if msg is None:
            raise
        print(f"reenact {name}: error: {msg}", file=sys.stderr)
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


__all__ = ["COMMANDS", "Command", "CommandOptions", "Range", "UsageError", "check_ranges", "main", "parse",
           "register", "stop_on_signals"]

if __name__ == "__main__":
    sys.exit(main())
