"""The evaluation protocol: render a driver video through a model and measure the result.

Two settings:

* **Self-reenactment** (the target is the driver clip's own first frame). Every output then has
  a ground truth: the driver frame, cropped with the target's alignment. The mesh warp follows
  the driver's head turn (eased beyond 25 degrees) but not its movement across the frame, so
  clips with a steady head position give the most meaningful PSNR / SSIM / L1.
* **Cross-reenactment** (any other target photo): no ground truth; expression, identity and
  temporal figures only.

Every model is measured on what a user sees: the full-resolution output frame, cropped with one
alignment of the target's face at ``EVAL_RES`` pixels (the same for every model, whatever its
generator's resolution), so the figures of different models are comparable.

Measured per frame (see ``metrics`` for units):

* pixels (self-reenactment): PSNR, SSIM and L1 of the generated crop against the ground truth;
* expression: the output crop, upsampled to 256 pixels, is re-tracked by MediaPipe in IMAGE
  mode; its blendshapes minus their first-second median are correlated with the driver's
  (tracked in VIDEO mode, likewise baseline-subtracted); for landmark-driven models, the
  re-tracked landmarks are compared with the commanded (retargeted) ones (NME);
* identity: dlib descriptor distance between each output crop and the target's own crop, both
  upsampled to 256 pixels, so the crop resolution is not counted as identity loss;
* temporal stability: frame-to-frame change inside the target's face oval, over the steps where
  the driver holds still, beside the same figure for the driver itself.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import InputFileError, NoFaceError, ReenactError, VideoError
from ..geometry.align import Aligner, apply_affine, warp_to_crop
from ..geometry.composite import face_mask
from ..geometry.ibug68 import to_ibug68
from ..io.images import as_rgb, is_image_path, load_image
from ..io.video import Frame, VideoReader, is_video_path, read_all
from ..tracking import FaceTracker
from ..tracking.landmarker import BLENDSHAPE_INDEX
from . import metrics as M

log = logging.getLogger(__name__)

EVAL_RES = 256
"""Side of the aligned crop of the output (and of the ground truth) that every figure is measured on."""
RETRACK_SIZE = 256
"""Output and ground-truth crops are upsampled to this size before MediaPipe re-tracks them."""
CORRELATION_MIN = 0.6
IDENTITY_MAX = 0.6
STABILITY_MAX_LEVELS = 2.0
"""Starting pass thresholds (MODELS.md, closed-loop validation): blendshape correlation >= 0.6,
dlib descriptor distance <= 0.6, face-region frame change of a still driver <= 2 levels (of 255)."""
POSE_NOTE = ("The ground truth is the driver frame cropped with the target's alignment: the output follows the "
             "driver's head turn (eased beyond 25 degrees) but not its movement across the frame, which lowers "
             "PSNR/SSIM and raises L1.")


@dataclass
class EvalView:
    """The crop every figure is measured on: the target's face aligned at ``EVAL_RES`` pixels.
    Has the attributes of ``PreparedTarget`` that the measurements read (res, M, crop, face, image)."""

    res: int
    M: np.ndarray
    crop: np.ndarray
    face: Any
    image: np.ndarray

    @classmethod
    def of(cls, target, res: int = EVAL_RES) -> EvalView:
        M = Aligner(res).transform(target.face.landmarks)
        return cls(res, M, warp_to_crop(target.image, M, res), target.face, target.image)


@dataclass
class FrameRecord:
    """What the protocol keeps of one rendered frame."""

    index: int
    t: float
    crop: np.ndarray                      # [R,R,3] uint8 generated crop (target alignment)
    ground_truth: np.ndarray | None       # [R,R,3] uint8, self-reenactment only
    driver_crop: np.ndarray               # [R,R,3] uint8: driver frame under a fixed alignment
    runtime_tracked: bool
    commanded: np.ndarray | None          # [68,2] crop pixels (landmark models) or None
    times: dict[str, float] = field(default_factory=dict)
    driver_frame: np.ndarray | None = None  # full driver frame, kept for the grid's columns only


@dataclass
class Evaluation:
    """Every figure of one evaluation (``summary``), the per-frame series and the grid images.

    summary: nested dict of scalars (what ``report.json`` holds besides the per-frame lists).
    per_frame: name -> ``[N]`` array (NaN = not measured).
    blendshapes: {"names": scored names, "driver": [N,K], "output": [N,K]} baseline-subtracted.
    grid: {"t": [K], "driver": [K images], "output": [...], "ground_truth": [...] or None}.
    """

    summary: dict[str, Any]
    per_frame: dict[str, np.ndarray]
    blendshapes: dict[str, Any]
    grid: dict[str, Any]


# --------------------------------------------------------------------------- inputs


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def resolve_target(driver_video: str | os.PathLike, target: str | os.PathLike | np.ndarray | None,
                   driver_first: np.ndarray) -> tuple[np.ndarray, bool, str]:
    """(target photo, self-reenactment?, description) for a target given as a path, an array or None.

    None or the driver itself: self-reenactment on the driver's first frame. A video: its first
    frame (self-reenactment only when it is the driver's file). A photo: the photo.
    """
    if target is None or (not isinstance(target, np.ndarray) and _same_file(target, driver_video)):
        return driver_first, True, f"{driver_video} (frame 0)"
    if isinstance(target, np.ndarray):
        return as_rgb(target, "target photo"), False, "array"
    path = Path(target)
    if not path.exists():
        raise InputFileError(f"target not found: {path}")
    if is_image_path(path):
        return load_image(path), False, str(path)
    if not is_video_path(path):
        log.warning("%s has no known image or video extension; reading it as a video", path)
    frames = read_all(path, max_frames=1)
    return frames[0].image, False, f"{path} (frame 0)"


def _upsample(crop: np.ndarray, size: int = RETRACK_SIZE) -> np.ndarray:
    if crop.shape[0] == size:
        return crop
    interp = cv2.INTER_CUBIC if crop.shape[0] < size else cv2.INTER_AREA
    return cv2.resize(crop, (size, size), interpolation=interp)


def _nan_rows(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.full((n, *shape), np.nan, np.float64)


def driver_frames(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[Frame]:
    """Stream the driver's frames (the first ``max_frames``) without holding the video in memory."""
    with VideoReader(path) as reader:
        for fr in reader:
            if max_frames is not None and fr.index >= max_frames:
                break
            yield fr


@dataclass
class DriverTrack:
    """The driver's VIDEO-mode tracking: landmarks [N,478,3] pixels and blendshapes [N,52] (NaN rows
    where untracked), ok [N], t [N] seconds, and the frames of its first second (for calibration)."""

    landmarks: np.ndarray
    blendshapes: np.ndarray
    ok: np.ndarray
    t: np.ndarray
    first_second: list[tuple[np.ndarray, float]]
    first_frame: np.ndarray


def track_driver(frames: Iterable[Frame], progress: bool = True, total: int | None = None,
                 calibration_s: float = 1.0) -> DriverTrack:
    lmk, blend, ok, ts, early = [], [], [], [], []
    first = None
    with FaceTracker(mode="video", max_faces=1) as tr:
        for fr in tqdm(frames, desc="track driver", unit="frame", total=total, disable=None if progress else True):
            if first is None:
                first = fr
            if fr.t - first.t < calibration_s:
                early.append((fr.image, fr.t))
            face = tr.track(fr.image, fr.t).primary
            ts.append(fr.t)
            ok.append(face is not None)
            lmk.append(face.landmarks if face is not None else np.full((478, 3), np.nan))
            blend.append(face.blendshapes if face is not None else np.full(52, np.nan))
    if first is None:
        raise InputFileError("the driver video has no frames")
    return DriverTrack(np.asarray(lmk, np.float64), np.asarray(blend, np.float64), np.asarray(ok, bool),
                       np.asarray(ts, np.float64), early, first.image)


def _retrack(crops: Sequence[np.ndarray], res: int, tracker: FaceTracker, desc: str,
             progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IMAGE-mode re-tracking of crops upsampled to 256: mesh [N,478,3] in crop pixels, blendshapes, ok."""
    n = len(crops)
    lmk, blend, ok = _nan_rows(n, (478, 3)), _nan_rows(n, (52,)), np.zeros(n, bool)
    for i, c in enumerate(tqdm(crops, desc=desc, unit="frame", disable=None if progress else True)):
        face = tracker.track(_upsample(c)).primary
        if face is not None:
            lmk[i] = face.scaled(res / RETRACK_SIZE).landmarks
            blend[i], ok[i] = face.blendshapes, True
    return lmk, blend, ok


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("reenact", "numpy", "torch", "mediapipe", "cv2", "dlib", "onnxruntime"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except Exception:
                continue
        out[mod] = str(getattr(m, "__version__", "unknown"))
    return out


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def _median_times(records: Sequence[FrameRecord]) -> dict[str, float]:
    keys = sorted({k for r in records for k in r.times})
    return {k: float(np.median([r.times[k] for r in records if k in r.times])) for k in keys}


def grid_indices(n: int, k: int = 8) -> list[int]:
    """Up to ``k`` evenly spaced frame indices from 0 to n-1."""
    if n <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, min(k, n))})


# --------------------------------------------------------------------------- rendering


def render(reenactor, frames: Iterable[Frame], self_reenactment: bool, driver: DriverTrack,
           progress: bool = True) -> list[FrameRecord]:
    """Drive ``reenactor`` with every frame; keep the crops the metrics need.

    reenactor: the runtime object (``Reenactor`` or anything with its ``target``, ``process``
    and ``commanded_landmarks``; ``calibrate_from`` when it has one: the driver's first second
    is then its neutral reference). driver: the driver's tracking, which places a fixed crop on
    the driver (its first tracked frame's alignment) for the driver's own stability figure.
    Each output frame is cropped with the evaluation view (``EvalView``).
    """
    tgt = EvalView.of(reenactor.target)
    res = int(tgt.res)
    if self_reenactment:
        driver_M = np.asarray(tgt.M, np.float64)
    else:
        if not driver.ok.any():
            raise NoFaceError("no face was tracked in any frame of the driver video")
        driver_M = Aligner(res).transform(driver.landmarks[int(np.argmax(driver.ok))])
    calibrate = getattr(reenactor, "calibrate_from", None)
    if calibrate is not None and driver.first_second:
        # calibrate on the driver's first second up front, so no evaluated frame waits for it
        calibrate(driver.first_second)
    n = len(driver.t)
    shown = set(grid_indices(n))
    records = []
    for fr in tqdm(frames, desc="render", unit="frame", total=n, disable=None if progress else True):
        out = reenactor.process(fr.image, fr.t)
        crop = warp_to_crop(as_rgb(np.asarray(out.image), "output frame"), tgt.M, res)
        driver_crop = warp_to_crop(fr.image, driver_M, res)
        commanded = reenactor.commanded_landmarks(out)  # 68 points, output-photo pixels
        if commanded is not None:
            commanded = apply_affine(tgt.M, np.asarray(commanded, np.float64)[:, :2])
        records.append(FrameRecord(
            fr.index, fr.t, crop, driver_crop if self_reenactment else None, driver_crop, bool(out.tracked),
            None if commanded is None else np.asarray(commanded, np.float64)[:, :2],
            dict(getattr(out, "times", {}) or {}), fr.image if len(records) in shown else None))
    if len(records) != n:
        raise VideoError(f"the driver video gave {len(records)} frames on the second read, {n} on the first")
    return records


# --------------------------------------------------------------------------- measuring


def _identity(enc, tgt, records: Sequence[FrameRecord], out_lmk: np.ndarray, out_ok: np.ndarray,
              gt_lmk: np.ndarray | None, gt_ok: np.ndarray | None, tracker: FaceTracker,
              progress: bool) -> tuple[np.ndarray, np.ndarray | None, int, dict[str, Any]]:
    """Per-frame descriptor distances to the target crop (output, and ground truth when given)."""
    res = int(tgt.res)
    s = RETRACK_SIZE / res
    target_big = _upsample(np.asarray(tgt.crop))
    face = tracker.track(target_big).primary
    if face is not None:
        target_lmk = face.landmarks[:, :2]
        ref_how = "target crop re-tracked at 256 px"
    else:  # the photo's own mesh, carried into the crop
        target_lmk = (apply_affine(tgt.M, tgt.face.landmarks) + 0.5) * s - 0.5
        ref_how = "target crop, landmarks from the photo's tracking"
    ref = enc.descriptor(target_big, target_lmk)
    n = len(records)
    dist = np.full(n, np.nan)
    gt_dist = None if gt_lmk is None else np.full(n, np.nan)
    fallback = 0
    for i, rec in enumerate(tqdm(records, desc="identity", unit="frame", disable=None if progress else True)):
        big = _upsample(rec.crop)
        if out_ok[i]:
            lm = (out_lmk[i, :, :2] + 0.5) * s - 0.5
        else:  # MediaPipe lost the output face: use the target's landmarks (same pose)
            lm, fallback = target_lmk, fallback + 1
        dist[i] = enc.distance(ref, enc.descriptor(big, lm))
        if gt_dist is not None and rec.ground_truth is not None and gt_ok is not None and gt_ok[i]:
            lm = (gt_lmk[i, :, :2] + 0.5) * s - 0.5
            gt_dist[i] = enc.distance(ref, enc.descriptor(_upsample(rec.ground_truth), lm))
    return dist, gt_dist, fallback, {"reference": ref_how}


def measure(records: Sequence[FrameRecord], tgt, driver: DriverTrack, self_reenactment: bool,
            identity: bool = True, progress: bool = True) -> Evaluation:
    """Compute every figure from rendered frames and the driver's tracking."""
    driver_lmk, driver_blend, driver_ok = driver.landmarks, driver.blendshapes, driver.ok
    n = len(records)
    if n == 0:
        raise ReenactError("no frames to evaluate")
    res = int(tgt.res)
    t = np.array([r.t for r in records], np.float64)
    crops = np.stack([r.crop for r in records])
    gts = np.stack([r.ground_truth for r in records]) if self_reenactment else None
    drv_crops = np.stack([r.driver_crop for r in records])
    per: dict[str, np.ndarray] = {"t": t, "driver_tracked": driver_ok.astype(float),
                                  "runtime_tracked": np.array([r.runtime_tracked for r in records], float)}

    # pixels (self-reenactment)
    pixel: dict[str, Any] | None = None
    if gts is not None:
        per["psnr_db"] = np.array([M.psnr(c, g) for c, g in zip(crops, gts)])
        per["ssim"] = np.array([M.ssim(c, g) for c, g in zip(crops, gts)])
        per["l1"] = np.array([M.l1(c, g) for c, g in zip(crops, gts)])
        finite = np.isfinite(per["psnr_db"])
        pixel = {"psnr_db": _nanmean(per["psnr_db"]) if finite.any() else float("inf"),
                 "ssim": float(per["ssim"].mean()), "l1_levels": float(per["l1"].mean()), "identical_frames": int((~finite).sum()),
                 "crop_size": res,
                 "note": "means over frames; PSNR over frames that differ from the ground truth "
                         "(identical frames have infinite PSNR and are counted in identical_frames). "
                         + POSE_NOTE}

    with FaceTracker(mode="image", max_faces=1, tile_search=False) as tracker:
        out_lmk, out_blend, out_ok = _retrack(crops, res, tracker, "re-track outputs", progress)
        gt_lmk = gt_blend = gt_ok = None
        if gts is not None:
            gt_lmk, gt_blend, gt_ok = _retrack(gts, res, tracker, "re-track ground truth", progress)

        # expression
        drv_base = M.first_second_baseline(driver_blend, t)
        out_base = M.first_second_baseline(out_blend, t)
        corr = M.blendshape_correlation(out_blend, driver_blend, (out_base, drv_base))
        expression: dict[str, Any] = {
            "blendshape_correlation": corr.mean, "pooled_correlation": corr.pooled, "blendshape_mae": corr.mae,
            "per_blendshape": corr.per_blendshape, "blendshapes_scored": list(corr.names),
            "driver_std": corr.driver_std, "frames_scored": corr.frames,
            "output_tracked_frames": int(out_ok.sum()), "driver_tracked_frames": int(driver_ok.sum()),
            "min_driver_std": M.MIN_DRIVER_STD, "retrack_size": RETRACK_SIZE,
            "baseline": "median over the tracked frames of the first second, per blendshape"}
        if gt_blend is not None:
            gt_corr = M.blendshape_correlation(gt_blend, driver_blend,
                                               (M.first_second_baseline(gt_blend, t), drv_base))
            expression["ground_truth_correlation"] = gt_corr.mean
            expression["ground_truth_note"] = ("the same measurement on the ground-truth crops: the most a perfect "
                                               "model could score through this re-tracking")
        commanded = [r.commanded for r in records]
        if any(c is not None for c in commanded):
            nme = np.full(n, np.nan)
            for i, c in enumerate(commanded):
                if c is not None and out_ok[i]:
                    nme[i] = M.landmark_nme(to_ibug68(out_lmk[i, :, :2]), c)
            per["landmark_nme"] = nme
            expression["landmark_nme"] = _nanmean(nme)
            expression["landmark_nme_frames"] = int(np.isfinite(nme).sum())
            expression["landmark_nme_note"] = ("mean distance between the output's re-tracked 68 points and the "
                                               "commanded ones, over the outer-eye-corner distance")
        else:
            expression["landmark_nme"] = None
        per["output_tracked"] = out_ok.astype(float)

        # identity
        ident: dict[str, Any] | None = None
        if identity:
            from .identity import SAME_PERSON_THRESHOLD, IdentityEncoder

            enc = IdentityEncoder()
            dist, gt_dist, fallback, info = _identity(enc, tgt, records, out_lmk, out_ok, gt_lmk, gt_ok, tracker,
                                                      progress)
            per["identity_distance"] = dist
            ident = {"distance": _nanmean(dist), "distance_max": float(np.nanmax(dist)),
                     "same_person_fraction": float(np.mean(dist[np.isfinite(dist)] < SAME_PERSON_THRESHOLD)),
                     "threshold": SAME_PERSON_THRESHOLD, "frames_without_output_landmarks": fallback,
                     "reference": info["reference"] + "; outputs upsampled to the same size"}
            if gt_dist is not None:
                per["ground_truth_identity_distance"] = gt_dist
                ident["ground_truth_distance"] = _nanmean(gt_dist)

    # temporal stability
    drv68 = np.stack([to_ibug68(driver_lmk[i, :, :2]) for i in range(n)])
    still = M.still_frames(drv68, t)
    tgt_mask = face_mask(apply_affine(tgt.M, tgt.face.landmarks), (res, res))
    first = int(np.argmax(driver_ok)) if driver_ok.any() else 0
    drv_M = np.asarray(tgt.M) if self_reenactment else Aligner(res).transform(driver_lmk[first])
    drv_mask = face_mask(apply_affine(drv_M, driver_lmk[first]), (res, res)) if driver_ok.any() else tgt_mask
    per["still"] = still.astype(float)
    per["output_frame_change"] = M.frame_differences(crops, tgt_mask)
    per["driver_frame_change"] = M.frame_differences(drv_crops, drv_mask)
    out_stab = M.temporal_stability(crops, tgt_mask, still)
    drv_stab = M.temporal_stability(drv_crops, drv_mask, still)
    temporal = {"output_levels": out_stab, "driver_levels": drv_stab,
                "ratio_to_driver": out_stab / drv_stab if np.isfinite(drv_stab) and drv_stab > 0 else None,
                "still_steps": int(still.sum()), "still_max_speed_iod_per_s": M.STILL_MAX_SPEED,
                "output_all_frames_levels": _nanmean(per["output_frame_change"]),
                "note": "mean absolute change from the previous frame inside the face oval (0-255 levels), over "
                        "the steps where the driver's landmarks move less than still_max_speed"}

    checks = {
        "blendshape_correlation": _check(corr.mean, CORRELATION_MIN, ">="),
        "identity_distance": _check(ident["distance"], IDENTITY_MAX, "<=") if ident else None,
        "temporal_stability": _check(out_stab, STABILITY_MAX_LEVELS, "<="),
    }
    summary = {"self_reenactment": self_reenactment, "frames": n, "pixel": pixel, "expression": expression,
               "identity": ident, "temporal": temporal, "checks": checks,
               "runtime_seconds_median": _median_times(records)}

    names = list(corr.names)
    cols = [BLENDSHAPE_INDEX[nm] for nm in names]
    blend = {"names": names, "driver": (driver_blend - drv_base)[:, cols], "output": (out_blend - out_base)[:, cols],
             "correlation": [corr.per_blendshape[nm] for nm in names]}
    gi = grid_indices(n)
    grid = {"index": gi, "t": [float(t[i]) for i in gi],
            "driver": [records[i].driver_frame if records[i].driver_frame is not None else records[i].driver_crop
                       for i in gi],
            "output": [records[i].crop for i in gi],
            "ground_truth": [records[i].ground_truth for i in gi] if self_reenactment else None}
    return Evaluation(summary, per, blend, grid)


def _check(value: float, threshold: float, op: str) -> dict[str, Any]:
    ok = None
    if value is not None and np.isfinite(value):
        ok = bool(value >= threshold) if op == ">=" else bool(value <= threshold)
    return {"value": value, "threshold": threshold, "rule": op, "passed": ok}


# --------------------------------------------------------------------------- entry point


def evaluate(model: str, driver_video: str | os.PathLike, target: str | os.PathLike | np.ndarray | None,
             out_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None, backend: str = "pytorch",
             width: float | None = None, max_frames: int | None = None, progress: bool = True,
             identity: bool = True, device: str = "cpu", command: str | None = None,
             reenactor_factory: Callable[..., Any] | None = None,
             options: dict[str, Any] | None = None) -> Evaluation:
    """Evaluate ``model`` driven by ``driver_video`` on ``target``; write the report to ``out_dir``.

    target: a photo, a video (its first frame), an RGB array, or None / the driver itself for
    self-reenactment (the driver's first frame is the target and every frame has a ground
    truth). checkpoint: trained weights (None: the model's untrained weights at ``width``).
    max_frames: evaluate only the first frames. identity: compute dlib identity distances
    (needs ``pip install "reenact[eval]"``). reenactor_factory: builds the runtime (default
    ``Reenactor.create``); same keyword arguments. options: ``RuntimeOptions`` fields (paste,
    pose, gaze, ...).

    Returns the ``Evaluation``; ``out_dir`` receives report.json, grid.png and curves.png.
    """
    from .report import write_report

    if identity:  # fail before the slow part when the extra is missing
        from .identity import identity_available

        ok, why = identity_available()
        if not ok:
            raise ReenactError(why)
    driver_video = Path(driver_video)
    if not driver_video.exists():
        raise InputFileError(f"driver video not found: {driver_video}")
    if max_frames is not None and max_frames < 2:
        raise ReenactError("--max-frames must be at least 2")
    t0 = time.perf_counter()
    driver = track_driver(driver_frames(driver_video, max_frames), progress)
    if len(driver.t) < 2:
        raise InputFileError(f"{driver_video} has fewer than 2 frames")
    if not driver.ok.any():
        raise NoFaceError(f"no face was found in any frame of {driver_video}")
    photo, self_mode, target_desc = resolve_target(driver_video, target, driver.first_frame)
    factory = reenactor_factory
    if factory is None:
        from ..runtime import Reenactor

        factory = Reenactor.create
    reenactor = factory(model=model, target=photo, checkpoint=checkpoint, width=width, backend=backend,
                        device=device, face_index=None, **(options or {}))
    try:
        records = render(reenactor, driver_frames(driver_video, max_frames), self_mode, driver, progress)
    finally:
        close = getattr(reenactor, "close", None)
        if close is not None:
            close()
    ev = measure(records, EvalView.of(reenactor.target), driver, self_mode, identity, progress)
    ev.summary = {
        "model": model, "checkpoint": None if checkpoint is None else str(checkpoint), "width": width,
        "backend": backend, "device": device, "driver": str(driver_video), "target": target_desc,
        "options": dict(options or {}), "eval_crop": EVAL_RES,
        "command": command if command is not None else " ".join(sys.argv), "versions": _versions(),
        "seconds": round(time.perf_counter() - t0, 2), **ev.summary}
    write_report(ev, out_dir)
    return ev
