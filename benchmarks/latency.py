"""Latency benchmarks: ``python -m reenact.benchmarks.latency [--part generator|pipeline|all] [options]``.

Writes, under ``--out-dir`` (default ``benchmarks/results/``):

* ``<name>.json``: the machine, GPU (or null), library versions, git commit, the command line,
  the settings and every figure (with the raw per-pass samples);
* ``<name>.md``: the tables;
* ``<name>_*.png``: the plots of each part.

``<name>`` defaults to ``<device>-<part>``, e.g. ``cpu-generator``.

Parts
-----
A part is a module named in ``PARTS`` that provides four functions:

* ``add_arguments(parser)``: its own options (an argument group); the options every part
  shares (``--models``, ``--backends``, ``--warmup``, ``--iters``, ``--threads``, ``--device``,
  ``--quick``) are defined here;
* ``run(args, env) -> dict``: measure; returns JSON-serialisable results (``env`` is
  ``benchmarks.common.environment()``);
* ``markdown(result, env) -> str``: its section of the report;
* ``plots(result, prefix) -> list[Path]``: its figures, named ``<prefix>_<what>.png``.

``generator`` (the generator alone on each backend, batch scaling, hardware floor) is in
``benchmarks/generator.py``; ``pipeline`` (end to end and per stage with the streaming runtime,
driver videos at 640x480 and 1280x720) is in ``benchmarks/pipeline.py``; ``warp`` (the mesh warp's
map and full-resolution composite at 640x480 and 1920x1080) is in ``benchmarks/warp.py``.

Examples::

    python -m reenact.benchmarks.latency                                  # every part available, all models
    python -m reenact.benchmarks.latency --part generator --models gcgan exprgan --backends pytorch onnxruntime
    python -m reenact.benchmarks.latency --part generator --quick --out-dir /tmp/bench   # a quick smoke run
    python -m reenact.benchmarks.latency --part pipeline --models gcgan --backends onnxruntime --resolutions 1280x720
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Sequence

from .common import RESULTS, environment, shared_machine_note, write_json, write_text

log = logging.getLogger("reenact.benchmarks.latency")

# part name -> module providing add_arguments / run / markdown / plots (in report order)
PARTS: dict[str, str] = {
    "generator": "reenact.benchmarks.generator",
    "pipeline": "reenact.benchmarks.pipeline",
    "warp": "reenact.benchmarks.warp",
}


def load_part(name: str) -> ModuleType | None:
    """The part's module, or None if this checkout does not have it yet."""
    modname = PARTS[name]
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name == modname:
            return None
        raise


def available_parts() -> dict[str, ModuleType]:
    return {n: m for n in PARTS if (m := load_part(n)) is not None}


def build_parser(parts: dict[str, ModuleType]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reenact.benchmarks.latency", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=[*PARTS, "all"], default="all",
                   help="what to measure (default: all parts this checkout has)")
    p.add_argument("--models", nargs="+", default=None, help="model ids (default: all registered models)")
    p.add_argument("--backends", nargs="+", default=None, help="backends (default: all; unavailable ones are "
                   "recorded as skipped with the reason)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up passes per measurement, never timed (default 10)")
    p.add_argument("--iters", type=int, default=None, help="timed passes per measurement (default 50 on the CPU, "
                   "200 on a GPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch and ONNX Runtime (default: "
                   "the cores this process may use)")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if available)")
    p.add_argument("--quick", action="store_true", help="a smoke run: width 0.25, few passes, small "
                   "peak measurements (figures not representative)")
    p.add_argument("--name", default=None, help="result file stem (default <device>-<part>, e.g. cpu-generator)")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where results go (default benchmarks/results/)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--replot", type=Path, default=None, metavar="JSON",
                   help="measure nothing: rewrite the markdown and plots of an earlier result file")
    p.add_argument("-v", "--verbose", action="store_true")
    for m in parts.values():
        m.add_arguments(p)
    return p


def _default_name(device: str, part: str, env: dict) -> str:
    if device.startswith("cuda") and env.get("gpu"):
        dev = "gpu-" + re.sub(r"[^a-z0-9]+", "-", env["gpu"]["name"].lower()).strip("-")
    else:
        dev = "cpu"
    return f"{dev}-{part}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parts = available_parts()
    args = build_parser(parts).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    if args.replot:
        return replot(args.replot, parts, None if args.no_plots else True)
    import torch

    if args.part == "all":
        chosen = list(parts)
    elif args.part in parts:
        chosen = [args.part]
    else:
        print(f"the {args.part!r} part is not in this version yet ({PARTS[args.part]} is missing); "
              f"available: {', '.join(parts)}", file=sys.stderr)
        return 2
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU is available here", file=sys.stderr)
        return 2
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(args.threads)
    env = environment(["benchmarks/latency.py", *argv], threads=args.threads)  # the load average before we start
    name = args.name or _default_name(args.device, args.part, env)
    out_dir = Path(args.out_dir)
    data = {"schema": 1, "name": name, **env,
            "settings": {"part": args.part, "parts": chosen, "device": args.device, "threads": args.threads,
                         "quick": args.quick},
            "parts": {}}
    t0 = time.perf_counter()
    for pname in chosen:
        log.info("part %s", pname)
        data["parts"][pname] = parts[pname].run(args, env)
    data["seconds"] = time.perf_counter() - t0
    try:
        data["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    written = [write_json(out_dir / f"{name}.json", data)] + write_reports(data, parts, out_dir, not args.no_plots)
    for p in written:
        print(p)
    return 0


def write_reports(data: dict, parts: dict[str, ModuleType], out_dir: Path, with_plots: bool = True) -> list[Path]:
    """``<name>.md`` and each part's plots from a result dict."""
    chosen = [p for p in data["parts"] if p in parts]
    md = [report_header(data)] + [parts[p].markdown(data["parts"][p], data) for p in chosen]
    written = [write_text(out_dir / f"{data['name']}.md", "\n".join(md))]
    if with_plots:
        for pname in chosen:
            written += parts[pname].plots(data["parts"][pname], out_dir / data["name"])
    return written


def replot(json_path: Path, parts: dict[str, ModuleType], with_plots: bool | None) -> int:
    import json

    data = json.loads(Path(json_path).read_text())
    for p in write_reports(data, parts, Path(json_path).parent, bool(with_plots)):
        print(p)
    return 0


def report_header(data: dict) -> str:
    m, v, g = data["machine"], data["versions"], data["gpu"]
    gpu = f"{g['name']} (compute {g['compute_capability']}, CUDA {g['cuda']})" if g else "none"
    lines = [f"# Latency: {data['name']}\n",
             f"- Command: `{data['command']}`",
             f"- Machine: {m['cpu']}, {m['cores_usable']} usable cores ({m['cores_logical']} logical), "
             f"{m['memory_gb']} GB; {m['torch_threads']} threads; load average at start "
             f"{' / '.join(str(x) for x in m['load_average_1_5_15'] or [])} (1 / 5 / 15 min)"
             + (f", at the end {' / '.join(str(x) for x in m['load_average_end'])}" if m.get("load_average_end") else ""),
             f"- GPU: {gpu}",
             "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
             f"- Commit: {(data['git'] or {}).get('commit') or 'unknown'}"
             + (" (with uncommitted changes)" if (data["git"] or {}).get("dirty") else ""),
             f"- Date: {data['created']}; whole run {data['seconds'] / 60:.1f} min"]
    note = shared_machine_note(data)
    if note:
        lines.append(f"\n> {note}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
