"""Shared pieces of the benchmarks: timers, statistics, the machine description, output files.

* ``Timer``: CUDA events on a GPU (device time, the host is synchronised once per iteration),
  ``time.perf_counter_ns`` on the CPU; warm-up iterations are never recorded.
* ``summarize``: median / p95 / p99 / mean / min / max in milliseconds and sustained fps
  (1000 / mean: frames per second when frames run back to back).
* ``environment``: CPU model and cores, load average, GPU, library versions, git commit and
  the command line, stored at the top of every result file.
* ``write_json`` (atomic), ``markdown_table``, ``plot_bars`` and ``plot_cdf`` (matplotlib).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from reenact.utils import atomic_path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


# -- statistics ---------------------------------------------------------------------------------
def summarize(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """Statistics of per-iteration times in milliseconds (linear-interpolated percentiles)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples to summarise")
    mean = float(a.mean())
    return {
        "n": int(a.size),
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": mean,
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "fps": 1000.0 / mean if mean > 0 else math.inf,
    }


# -- timing ---------------------------------------------------------------------------------------
class Timer:
    """Times a callable: CUDA events on ``cuda`` devices, ``perf_counter_ns`` on the CPU.

    On a GPU each iteration is bracketed by two events on the current stream and the host waits
    for the second one, so one iteration's time is the device time from its first launch to its
    last kernel (host launch overhead is included only where it stalls the GPU).
    """

    def __init__(self, device: str = "cpu"):
        self.cuda = str(device).startswith("cuda")
        if self.cuda:
            import torch

            self._torch = torch

    def sync(self) -> None:
        if self.cuda:
            self._torch.cuda.synchronize()

    def time_ms(self, fn: Callable[[], Any]) -> float:
        """One call of ``fn``, in milliseconds."""
        return self.time_stages({"fn": fn})["fn"]

    def time_stages(self, stages: dict[str, Callable[[], Any]]) -> dict[str, float]:
        """One pass through ``stages`` in order; milliseconds per stage.

        GPU: an event before the first stage and after each stage, one host wait at the end, so
        stages run back to back as they would in a frame. CPU: ``perf_counter_ns`` around each.
        """
        if self.cuda:
            torch = self._torch
            events = [torch.cuda.Event(enable_timing=True) for _ in range(len(stages) + 1)]
            events[0].record()
            for ev, fn in zip(events[1:], stages.values()):
                fn()
                ev.record()
            events[-1].synchronize()
            return {k: float(a.elapsed_time(b)) for k, a, b in zip(stages, events, events[1:])}
        out = {}
        for name, fn in stages.items():
            t0 = time.perf_counter_ns()
            fn()
            out[name] = (time.perf_counter_ns() - t0) / 1e6
        return out

    def repeat(self, stages: dict[str, Callable[[], Any]] | Callable[[], Any], warmup: int, iters: int,
               budget_s: float | None = None, min_iters: int = 3) -> tuple[dict[str, list[float]], dict[str, Any]]:
        """Warm up, then time up to ``iters`` passes through ``stages`` (or one callable).

        The first pass counts as the first warm-up pass. With ``budget_s``, the warm-up and timed
        counts are cut so the measurement fits the budget (estimated from the first pass, which is
        usually the slowest), never below one warm-up pass and ``min_iters`` timed passes.
        Returns ``({stage: samples_ms, ..., "total": samples_ms}, {"warmup", "iters", "first_call_ms"})``;
        warm-up passes are never part of the samples.
        """
        if callable(stages):
            stages = {"fn": stages}
        self.sync()
        first = sum(self.time_stages(stages).values())  # allocation, lazy init, compilation
        if budget_s is not None:
            room = budget_s * 1000.0 / max(first, 1e-3)
            iters = max(min_iters, min(iters, int(room * 0.8)))
            warmup = min(warmup, max(1, int(room * 0.2)))
        warmup = max(warmup, 1)
        for _ in range(1, warmup):
            for fn in stages.values():
                fn()
        self.sync()
        samples: dict[str, list[float]] = {k: [] for k in stages}
        total: list[float] = []
        for _ in range(iters):
            t = self.time_stages(stages)
            for k, v in t.items():
                samples[k].append(v)
            total.append(sum(t.values()))
        samples["total"] = total
        return samples, {"warmup": warmup, "iters": iters, "first_call_ms": first}


# -- environment --------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read only: never refresh the index
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, env=env)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(module: str) -> str | None:
    try:
        m = __import__(module)
        return str(getattr(m, "__version__", "unknown"))
    except Exception:
        return None


def environment(argv: Sequence[str] | None = None, threads: int | None = None) -> dict[str, Any]:
    """The machine, GPU (or None), library versions, git commit and the command line."""
    import torch

    try:
        cores_usable = len(os.sched_getaffinity(0))
    except AttributeError:
        cores_usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        gpu = {"name": p.name, "compute_capability": f"{p.major}.{p.minor}", "memory_gb": round(p.total_memory / 2**30, 1),
               "multiprocessors": p.multi_processor_count, "cuda": torch.version.cuda,
               "cudnn": torch.backends.cudnn.version()}
    from reenact.engines import tensorrt as trtx

    f = trtx.flavour()
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    argv = list(sys.argv if argv is None else argv)
    return {
        "machine": {
            "cpu": _cpu_model(), "arch": platform.machine(), "cores_logical": os.cpu_count(),
            "cores_usable": cores_usable, "torch_threads": threads or torch.get_num_threads(),
            "memory_gb": mem_gb, "load_average_1_5_15": load, "os": platform.platform(),
        },
        "gpu": gpu,
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "onnx": _version("onnx"), "onnxruntime": _version("onnxruntime"),
            "tensorrt": f"{f.name} {f.version}" if f else None,
            "matplotlib": _version("matplotlib"),
        },
        "git": {"commit": commit, "dirty": bool(dirty) if dirty is not None else None},
        "command": command_line(argv),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def command_line(argv: Sequence[str]) -> str:
    """The command as a user would type it (``python -m reenact.benchmarks.latency ...``)."""
    argv = list(argv)
    prog = argv[0] if argv else ""
    if prog.endswith(os.path.join("benchmarks", "latency.py")) or prog.endswith("latency.py") or prog == "-m":
        head = ["python", "-m", "reenact.benchmarks.latency"]
    else:
        head = ["python", prog] if prog else ["python"]
    return shlex.join(head + argv[1:])


def shared_machine_note(env: dict[str, Any]) -> str | None:
    """A warning line when the machine was busy (1-minute load above 1 at the start or the end)."""
    m = env.get("machine") or {}
    start, end = m.get("load_average_1_5_15"), m.get("load_average_end")
    loads = [x[0] for x in (start, end) if x]
    if loads and max(loads) > 1:
        seen = f"{start[0]} at the start" if start else ""
        seen += (", " if seen else "") + f"{end[0]} at the end" if end else ""
        return (f"Figures are from a shared {m.get('cores_usable')}-core machine (1-minute load average {seen}): "
                f"other processes competed for the cores, so treat them as upper bounds of what this CPU can do.")
    return None


# -- output files -------------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON, atomically (readers never see a partial file)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(data), indent=1) + "\n")
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def fmt(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant figures (as a fixed-point string), or a dash."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x == 0:
            return "0"
        mag = math.floor(math.log10(abs(x)))
        return f"{x:.{max(digits - 1 - mag, 0)}f}"
    return str(x)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one letter per column (l / r), numbers right by default."""
    rows = [[fmt(c) for c in r] for r in rows]
    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# -- plots ----------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bars(path: str | os.PathLike, panels: Sequence[tuple[str, dict[str, dict[str, dict[str, float]]]]],
              title: str, ylabel: str = "milliseconds (log scale)", order: Sequence[str] = ()) -> Path:
    """Grouped bars: one panel per ``(panel title, {group: {series: stats}})``; bar = median,
    whisker up to p99 and down to the minimum; series in ``order`` first."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    series_all: list[str] = []
    for _, groups in panels:
        for g in groups.values():
            series_all += [s for s in g if s not in series_all]
    series_all = [s for s in order if s in series_all] + [s for s in series_all if s not in order]
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(series_all)}
    for ax, (ptitle, groups) in zip(axes[0], panels):
        names = list(groups)
        width = 0.8 / max(len(series_all), 1)
        for j, s in enumerate(series_all):
            xs, med, lo, hi = [], [], [], []
            for i, g in enumerate(names):
                st = groups[g].get(s)
                if st:
                    xs.append(i + (j - (len(series_all) - 1) / 2) * width)
                    med.append(st["median_ms"])
                    lo.append(st["median_ms"] - st["min_ms"])
                    hi.append(st["p99_ms"] - st["median_ms"])
            if xs:
                ax.bar(xs, med, width, yerr=[lo, hi], capsize=2, label=s, color=colors[s])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names)
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
        ax.set_ylabel(ylabel)
        ax.set_title(ptitle)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save_figure(plt, fig, title, path)


def _save_figure(plt, fig, title: str, path: str | os.PathLike) -> Path:
    """Title, tight layout and an atomic PNG write; closes the figure."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _plain_log_ticks(axis) -> None:
    """Log axis labelled 1, 2, 3, 5, 10, 20, ... as plain numbers, minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))  # labels even on spans under a decade
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_cdf(path: str | os.PathLike, panels: dict[str, dict[str, Sequence[float]]], title: str) -> Path:
    """Empirical latency CDFs: one panel per ``{panel: {series: samples_ms}}``."""
    plt = _pyplot()
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols) if n else 1
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, (ptitle, series) in zip(axes.flat, panels.items()):
        for name, samples in series.items():
            a = np.sort(np.asarray(samples, dtype=np.float64))
            if a.size:
                ax.step(a, np.arange(1, a.size + 1) / a.size, where="post", label=f"{name} (n={a.size})")
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.set_xlabel("milliseconds per frame (log scale)")
        ax.set_ylabel("fraction of frames")
        ax.set_title(ptitle)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _save_figure(plt, fig, title, path)


__all__ = ["REPO", "RESULTS", "Timer", "command_line", "environment", "fmt", "markdown_table", "plot_bars",
           "plot_cdf", "shared_machine_note", "summarize", "write_json", "write_text"]
