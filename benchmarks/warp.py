"""The mesh warp alone: backward map and full-resolution composite, on real motion.

A target photo (the built-in astronaut, its face scaled to a portrait's size and placed on a
canvas of each ``--photo-sizes`` size, by default 640x480 and 1920x1080) is driven by the
fixture clip through the runtime's own analysis (``Reenactor.analyse``: tracking, retargeting,
head pose, smoothing), so the meshes are the ones ``reenact run`` warps. Then, timed separately
per mesh (warm-up passes excluded), on the CPU with the default OpenCV threads:

* **map**: ``WarpCompositor.frame``: the dense backward map of the photo's warp region and its
  hole mask (the runtime's ``warp`` stage for the warp model);
* **composite**: ``WarpCompositor.render``: the photo remapped at full resolution into a
  preallocated output frame, with the mouth interior (the ``composite`` stage);
* **crop map**: the same warp in a model's crop (``backward_map`` plus the remap of the crop) at
  128 and 256 pixels: what a generator that reads the warp adds to the ``warp`` stage.
"""
from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np

from .common import markdown_table, plot_cdf, summarize

log = logging.getLogger("reenact.benchmarks.warp")

PHOTO_SIZES = ("640x480", "1920x1080")
CROP_SIZES = (128, 256)
FACE_HEIGHT = 0.4
"""The face oval's height as a fraction of the photo's height (a head-and-shoulders portrait)."""

INCLUDES = {
    "map": "WarpCompositor.frame: backward map of the warp region (grid of <= 128 points a side, bilinear "
           "upsampling) and the hole mask",
    "composite": "WarpCompositor.render: cv2.remap of the warp region of the full photo into a preallocated "
                 "frame, plus the mouth interior where the mouth opened",
    "crop map": "backward_map at the crop size plus cv2.remap of the target crop (for generators that read "
                "the warp)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("warp part", "the mesh warp alone (map, composite, crop map)")
    g.add_argument("--photo-sizes", nargs="+", default=None, metavar="WxH",
                   help=f"target photo sizes (default {' '.join(PHOTO_SIZES)})")
    g.add_argument("--warp-frames", type=int, default=120, help="driver frames (meshes) timed per size (default 120)")


def _portrait(photo: np.ndarray, face_landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photo scaled so its face fills ``FACE_HEIGHT`` of a ``size`` canvas, face centred."""
    import cv2

    from reenact.geometry import FACE_OVAL

    w, h = size
    oval = face_landmarks[FACE_OVAL, :2]
    scale = FACE_HEIGHT * h / float(np.ptp(oval[:, 1]))
    c = oval.mean(0)
    A = np.array([[scale, 0, w / 2 - scale * c[0]], [0, scale, h / 2 - scale * c[1]]])
    return cv2.warpAffine(photo, A, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _time(fn, args_list, warmup: int) -> list[float]:
    for a in args_list[:warmup]:
        fn(a)
    out = []
    for a in args_list:
        t0 = time.perf_counter()
        fn(a)
        out.append(1e3 * (time.perf_counter() - t0))
    return out


def run(args: argparse.Namespace, env: dict[str, Any]) -> dict[str, Any]:
    import cv2

    from reenact.assets import default_target_path
    from reenact.geometry.warp import backward_map, extend_mesh, remap
    from reenact.io.images import load_image
    from reenact.io.video import read_all
    from reenact.runtime import Reenactor
    from reenact.tracking import FaceTracker

    from .pipeline import default_driver

    sizes = args.photo_sizes or (["640x480"] if args.quick else list(PHOTO_SIZES))
    n = 20 if args.quick else int(args.warp_frames)
    warmup = 3 if args.quick else 10
    driver = default_driver()
    if driver is None:
        raise SystemExit("the warp part needs the fixture clip: set REENACT_SHARED or put shared/ beside the clone")
    frames = read_all(driver, max_frames=30 + n)
    photo = load_image(default_target_path())
    with FaceTracker(mode="image") as tr:
        face = tr.track(photo).primary
    result: dict[str, Any] = {"includes": INCLUDES, "threads_cv2": cv2.getNumThreads(), "frames": n, "warmup": warmup,
                              "photos": {}, "crops": {}}
    t_start = time.perf_counter()
    for res in sizes:
        w, h = (int(x) for x in res.lower().split("x"))
        target = _portrait(photo, face.landmarks, (w, h))
        with Reenactor.create("warp", target) as r:
            r.calibrate_from([(f.image, f.t) for f in frames[:30]])
            meshes = [r.analyse(f.image, f.t).mesh for f in frames[30:]]
            wc = r.warper
            wfs = [wc.frame(m) for m in meshes]
            map_ms = _time(lambda m: wc.frame(m), meshes, warmup)
            comp_ms = _time(lambda wf: wc.render(wf), wfs, warmup)
            x0, y0, x1, y1 = wc.region
            result["photos"][res] = {"region": [x1 - x0, y1 - y0], "grid_step": wc.step, "map": summarize(map_ms),
                                     "composite": summarize(comp_ms), "map_samples_ms": map_ms,
                                     "composite_samples_ms": comp_ms}
            log.info("%s photo (warp region %dx%d): map %.2f ms, composite %.2f ms (medians)", res, x1 - x0,
                     y1 - y0, np.median(map_ms), np.median(comp_ms))
            if res == sizes[0]:
                from reenact.geometry import Aligner, apply_affine
                from reenact.geometry.align import warp_to_crop

                for R in CROP_SIZES:
                    M = Aligner(R).transform(r.target.face.landmarks)
                    crop = warp_to_crop(target, M, R)
                    src = apply_affine(M, r.target.face.landmarks[:, :2])
                    step = max(1, -(-R // 64))

                    def crop_warp(m, M=M, src=src, crop=crop, R=R, step=step):
                        s, d = extend_mesh(src, apply_affine(M, m[:, :2]))
                        remap(crop, *backward_map(s, d, (R, R), (0, 0), step))

                    ms = _time(crop_warp, meshes, warmup)
                    result["crops"][str(R)] = {**summarize(ms), "grid_step": step, "samples_ms": ms}
                    log.info("crop %d: map + remap %.2f ms (median)", R, np.median(ms))
    result["seconds"] = time.perf_counter() - t_start
    return result


def markdown(result: dict[str, Any], env: dict[str, Any]) -> str:
    out = ["## The mesh warp alone\n",
           f"{result['frames']} real meshes per size (the fixture clip retargeted onto the built-in photo, its face "
           f"{int(FACE_HEIGHT * 100)}% of the photo's height), {result['warmup']} warm-up passes excluded; "
           f"OpenCV threads: {result['threads_cv2']}.\n"]
    rows = [[res, f"{p['region'][0]}x{p['region'][1]}", p["grid_step"], p["map"]["median_ms"], p["map"]["p99_ms"],
             p["composite"]["median_ms"], p["composite"]["p99_ms"]] for res, p in result["photos"].items()]
    out.append(markdown_table(["photo", "warp region", "grid step", "map median ms", "map p99 ms",
                               "composite median ms", "composite p99 ms"], rows, "llrrrrr"))
    if result["crops"]:
        rows = [[f"{R}x{R}", c["grid_step"], c["median_ms"], c["p99_ms"]] for R, c in result["crops"].items()]
        out.append("\nThe same warp in a model's crop (map + remap of the crop):\n")
        out.append(markdown_table(["crop", "grid step", "median ms", "p99 ms"], rows, "lrrr"))
    out.append("\n" + "\n".join(f"- **{k}**: {v}" for k, v in result["includes"].items()) + "\n")
    return "\n".join(out)


def plots(result: dict[str, Any], prefix) -> list:
    panels = {f"{res} photo": {"map": p["map_samples_ms"], "composite": p["composite_samples_ms"]}
              for res, p in result["photos"].items()}
    if not panels:
        return []
    p = plot_cdf(f"{prefix}_warp_cdf.png", panels, "mesh warp: per-frame time (CDF)")
    return [p] if p is not None else []
