"""One reenactment session: a target photo driven frame by frame (MODELS.md 7, "Runtime loop").

``Reenactor`` holds everything per stream: the driver tracker (MediaPipe VIDEO mode), the
analysed target and its encoded cache, the driving signal with its calibration, the One Euro
smoother with the hold/ease policy, the backend and the compositor. Its stages can be called one
by one (the concurrent pipeline runs them on different threads) or together with ``process``.

Calibration: the first ``calib_s`` seconds of tracked frames (neutral, facing the camera) give
the driver's reference; until then the target stays neutral. ``recalibrate()`` starts over.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backends import Backend, select_backend
from ..choices import DEFAULT_MODEL, MOUTH_MODES
from ..errors import ModelFileError, ReenactError
from ..filters import ConditionSmoother
from ..geometry import euler_angles, pose_rotation
from ..geometry.warp import DriverMouth, WarpCompositor, WarpFrame
from ..models import build_model, list_models
from ..models.base import Condition, ReenactModel
from ..models.signals import DriverSignal, Signal
from ..models.weights import load_model
from ..tracking import Face, FaceTracker, FrameTracking
from .target import PreparedTarget, prepare_target

log = logging.getLogger(__name__)

PASTE_MODES = ("warp", "replace")
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass
class RuntimeOptions:
    """User knobs of a session."""

    intensity: float = 1.0       # expression gain (1 = the driver's own amplitude)
    smoothing: float = 1.0       # One Euro strength: 0 off, 1 the presets, 2 steadier
    calib_s: float = 1.0         # seconds of neutral driver used for calibration
    max_yaw_deg: float = 30.0    # beyond this head turn the frame counts as untracked (hold, then ease)
    face_index: int | None = None  # driver face to follow (0 = largest)
    color_match: bool = False    # Lab mean/std colour transfer at paste-back (paste="replace")
    paste: str = "warp"          # warp: the photo moved by the mesh warp at full resolution, plus what the
                                 # generator adds to the warped face; replace: the generated face pasted in
    pose: bool = True            # the driver's head turn reaches the target (roll fully, yaw/pitch eased to 25 deg)
    gaze: bool = True            # the driver's iris motion reaches the target
    mouth: str = "driver"        # an opened mouth the photo shows closed: driver, the driver's own interior
                                 # (teeth, tongue) brightness-matched to the photo; dark, a plain dark one

    def validate(self) -> None:
        if not 0.0 <= self.intensity <= 3.0:
            raise ReenactError(f"intensity must be in [0, 3], got {self.intensity}")
        if not 0.0 <= self.smoothing <= 5.0:
            raise ReenactError(f"smoothing must be in [0, 5], got {self.smoothing}")
        if self.paste not in PASTE_MODES:
            raise ReenactError(f"paste must be one of {', '.join(PASTE_MODES)}, got {self.paste!r}")
        if self.calib_s < 0:
            raise ReenactError(f"calibration time must be >= 0, got {self.calib_s}")
        if self.mouth not in MOUTH_MODES:
            raise ReenactError(f"mouth must be one of {', '.join(MOUTH_MODES)}, got {self.mouth!r}")


@dataclass
class FrameOutput:
    """One rendered frame. image: the full-resolution output ``[H,W,3]`` uint8; crop: the generated
    crop ``[R,R,3]`` (for the ``warp`` model: the warped target crop); mesh: the target's moved
    478 points ``[478,3]`` (photo pixels)."""

    image: np.ndarray
    crop: np.ndarray | None
    tracked: bool
    driver_face: Face | None
    condition: dict[str, np.ndarray]
    signal: Signal
    calibrating: bool
    times: dict[str, float] = field(default_factory=dict)
    mesh: np.ndarray | None = None


@dataclass
class Analysis:
    """Everything before the generator for one frame (``Reenactor.analyse``)."""

    face: Face | None
    signal: Signal | None       # raw signal; None while untracked or calibrating
    shown: Signal               # after smoothing and the hold/ease policy
    cond: Condition             # the model's frozen Condition dataclass
    calibrating: bool
    times: dict[str, float]
    mesh: np.ndarray            # [478,3] the target's moved mesh, photo pixels
    mouth: DriverMouth | None = None  # the driver frame's mouth (options.mouth == "driver", tracked frames)


def default_weights(model_id: str) -> Path | None:
    """The weights shipped with the package for ``model_id`` (None if there are none)."""
    p = WEIGHTS_DIR / f"{model_id}.safetensors"
    return p if p.is_file() and p.with_suffix(".json").is_file() else None


def load_runtime_model(model: str | ReenactModel, checkpoint: str | os.PathLike | None = None,
                       width: float | None = None) -> tuple[ReenactModel, np.ndarray | None, str]:
    """(model, alignment template or None, description of the weights)."""
    if isinstance(model, ReenactModel):
        return model.eval(), getattr(model, "align_template", None), "given"
    if model not in list_models():
        raise ReenactError(f"unknown model {model!r}; available: {', '.join(list_models())}")
    if not build_model(model).has_generator:
        if checkpoint:
            raise ReenactError(f"the {model} model has no network: it takes no --checkpoint")
        return build_model(model).eval(), None, "none needed"
    ck = Path(checkpoint) if checkpoint else (None if width is not None else default_weights(model))
    if ck is not None:
        m = load_model(ck)
        if m.model_id != model:
            raise ModelFileError(f"{ck} holds a {m.model_id} model, not {model}")
        return m, getattr(m, "align_template", None), str(ck)
    opts = {} if width is None else {"width": width}
    log.warning("%s: no trained weights (%s); running an untrained network: the output will not look like a "
                "face. Pass --checkpoint runs/NNNNN-%s from `reenact train`.", model,
                "none shipped" if width is None else "--width given", model)
    return build_model(model, **opts).eval(), None, "untrained"


class Reenactor:
    """A target photo driven by one driver stream."""

    def __init__(self, model: ReenactModel, target: PreparedTarget, backend: Backend, *,
                 options: RuntimeOptions | None = None, template: np.ndarray | None = None,
                 weights: str = "given", tracker: FaceTracker | None = None):
        self.options = options or RuntimeOptions()
        self.options.validate()
        self.model, self.target, self.backend = model, target, backend
        self.weights = weights
        self.template = template
        self._warp_inputs = model.warp_inputs()  # both derived from engines(): computed once, not per frame
        self._has_generator = model.has_generator
        t0 = time.perf_counter()
        with torch.no_grad():
            self.cache = backend.encode_target(target.model_input(backend.device))
        self.encode_s = time.perf_counter() - t0
        drivers = any(e.kind == "driver" for e in model.engines())
        self.signal: DriverSignal = model.make_signal(
            target, intensity=self.options.intensity, pose=self.options.pose, gaze=self.options.gaze,
            template=template, encode=self._encode_driver if drivers else None)
        self.smoother = ConditionSmoother(self.signal.filter_spec(self.options.smoothing), self.signal.neutral())
        self.warper = WarpCompositor(target.image, target.face.landmarks, target.M, model.res, target.crop)
        # paper-mode generators (no warp input) render the target in their own way: the residual they add
        # to the warped photo is measured against their own neutral rendering, moved by the same warp
        self.neutral_crop = None
        if self._has_generator:
            neutral = self.signal.neutral()
            wf = self.warper.frame(self.signal.mesh(neutral), crop=True)
            self.neutral_crop = self.generate(self.signal.condition(neutral, 0.0), wf)
        self.signal.reset()
        self._own_tracker = tracker is None
        self.tracker = tracker
        self._calib_faces: list[Face] = []
        self._calib_frames: list[np.ndarray] = []
        self._calib_t0: float | None = None
        self._last_t: float | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(cls, model: str | ReenactModel = DEFAULT_MODEL, target: Any = None, *,
               checkpoint: str | os.PathLike | None = None, width: float | None = None, backend: str = "auto",
               device: str | None = None, face_index: int | None = None, target_face_index: int | None = None,
               options: RuntimeOptions | None = None, **opts: Any) -> Reenactor:
        """Load the model (shipped weights, a checkpoint, or untrained with ``width``), analyse the
        target (a path, an RGB array, or None for the built-in photo) and open a backend."""
        from ..assets import default_target_path

        options = options or RuntimeOptions(**opts)
        if face_index is not None:
            options.face_index = face_index
        m, template, weights = load_runtime_model(model, checkpoint, width)
        tgt = prepare_target(default_target_path() if target is None else target, m.res, template=template,
                             face_index=target_face_index, color_match=options.color_match)
        kw = {"device": device} if backend == "pytorch" and device else {}
        be = select_backend(backend, m, **kw)
        return cls(m, tgt, be, options=options, template=template, weights=weights)

    def close(self) -> None:
        if self.tracker is not None and self._own_tracker:
            self.tracker.close()
            self.tracker = None

    def __enter__(self) -> Reenactor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- controls -----------------------------------------------------------------------------
    def recalibrate(self) -> None:
        """Take a new neutral reference from the next ``calib_s`` seconds of frames."""
        self._calib_faces, self._calib_frames, self._calib_t0 = [], [], None
        self.signal.calibrated = False
        self.signal.reset()
        self.smoother.reset()

    def calibrate_from(self, frames: list[tuple[np.ndarray, float]]) -> int:
        """Calibrate on explicit neutral frames ``[(rgb, t), ...]``; returns how many had a face."""
        faces, images = [], []
        with FaceTracker(mode="image") as tr:
            for im, _t in frames:
                f = self._pick(tr.track(im).faces)
                if f is not None:
                    faces.append(f)
                    images.append(im)
        if not faces:
            raise ReenactError("no face in any of the calibration frames")
        self.signal.calibrate(faces, images)
        return len(faces)

    def set_options(self, *, intensity: float | None = None, smoothing: float | None = None) -> None:
        """Change the expression gain or smoothing strength mid-stream."""
        if intensity is not None:
            self.options.intensity = self.signal.intensity = float(intensity)
        if smoothing is not None and smoothing != self.options.smoothing:
            self.options.smoothing = float(smoothing)
            self.options.validate()
            self.smoother = ConditionSmoother(self.signal.filter_spec(self.options.smoothing), self.signal.neutral())

    @property
    def calibrating(self) -> bool:
        return not self.signal.calibrated

    # -- stages -------------------------------------------------------------------------------
    def _pick(self, faces: list[Face]) -> Face | None:
        i = self.options.face_index or 0
        return faces[i] if len(faces) > i else None

    def track(self, frame: np.ndarray, t: float) -> FrameTracking:
        if self.tracker is None:
            self.tracker = FaceTracker(mode="video", max_faces=max(2, (self.options.face_index or 0) + 1))
        return self.tracker.track(frame, t)

    def measure(self, face: Face | None, frame: np.ndarray | None, t: float) -> Signal | None:
        """Driver face -> raw signal; None while untracked, calibrating, or turned too far."""
        if face is None:
            return None
        yaw, pitch, _roll = euler_angles(pose_rotation(face.transform))
        if max(abs(yaw), abs(pitch)) > self.options.max_yaw_deg:
            return None
        if not self.signal.calibrated:
            if self._calib_t0 is None:
                self._calib_t0 = t
            self._calib_faces.append(face)
            if frame is not None:
                self._calib_frames.append(frame)
            if t - self._calib_t0 >= self.options.calib_s and len(self._calib_faces) >= 3:
                self.signal.calibrate(self._calib_faces, self._calib_frames or None)
                log.info("driver calibrated on %d frames (%.2f s)", len(self._calib_faces), t - self._calib_t0)
                self._calib_faces, self._calib_frames = [], []
            return None if not self.signal.calibrated else self.signal.neutral()
        return self.signal.measure(face, frame)

    def smooth(self, sig: Signal | None, t: float) -> Signal:
        if self.signal.calibrated or sig is not None:
            return self.smoother.update(sig, t)
        return self.smoother.update(self.signal.neutral(), t)  # calibrating: hold the target neutral

    def condition(self, sig: Signal, t: float) -> Condition:
        return self.signal.condition(sig, t)

    def warp(self, a: Analysis) -> WarpFrame:
        """The frame's mesh warp: the backward map of the photo's warp region and, for models with a
        generator, the warped target crop and its hole mask."""
        return self.warper.frame(a.mesh, crop=self._has_generator, mouth=a.mouth)

    @torch.no_grad()
    def generate(self, cond: Condition, wf: WarpFrame | None = None) -> np.ndarray | None:
        """The generator's crop ``[R,R,3]`` uint8 (None for a model without one)."""
        if not self._has_generator:
            return None
        feeds = cond.as_dict()
        if self._warp_inputs:
            if wf is None or wf.crop is None:
                raise ReenactError(f"{self.model.model_id} reads the warped crop: pass the frame's warp")
            feeds["warped"] = torch.from_numpy(wf.crop).permute(2, 0, 1)[None].float() * (2.0 / 255.0) - 1.0
            feeds["hole"] = torch.from_numpy(wf.crop_hole)[None, None]
        img = self.backend.drive(self.cache, {k: v.to(self.backend.device) for k, v in feeds.items()})
        img = ((img[0].float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8)
        return img.permute(1, 2, 0).cpu().numpy()

    def composite(self, crop: np.ndarray | None, wf: WarpFrame) -> np.ndarray:
        """The full-resolution output frame (a ring buffer the next frames reuse: copy it to keep it).

        warp: the photo moved by the mesh warp, the mouth interior filled where it opened, plus the
        generator's residual inside the face: its crop minus the warped target crop (models that
        read the warp) or minus its own neutral rendering moved by the same warp (paper mode).
        replace: the generated crop pasted into the unmoved photo (research comparisons)."""
        if self.options.paste == "replace" and crop is not None:
            return self.target.compositor(crop)
        residual = None
        if crop is not None:
            ref = wf.crop if self._warp_inputs else self.warper.warp_crop(wf, self.neutral_crop)
            residual = crop.astype(np.float32) - ref.astype(np.float32)
        # the mouth interior is filled first; a generator that reads the warp got the filled crop, so
        # its residual paints over that fill (teeth, tongue), as it learnt to
        return self.warper.render(wf, residual)

    def _encode_driver(self, gray: torch.Tensor) -> torch.Tensor:
        return self.backend.driver({"drv_gray": gray.to(self.backend.device)})["code_raw"]

    # -- all at once --------------------------------------------------------------------------
    def analyse(self, frame: np.ndarray | None, t: float, dblend: np.ndarray | None = None) -> Analysis:
        """Track (or take a scripted expression ``dblend``), measure, smooth, form the condition and
        the target's moved mesh: every stage before the warp, with its times (track, condition,
        smooth; seconds)."""
        c = time.perf_counter
        t0 = c()
        if dblend is not None:
            face = None
        else:
            face = self._pick(self.track(frame, t).faces)
        t1 = c()
        sig = self.signal.from_blendshapes(dblend) if dblend is not None else self.measure(face, frame, t)
        t2 = c()
        shown = self.smooth(sig, t)
        t3 = c()
        cond = self.condition(shown, t)
        mesh = self.signal.mesh(shown)
        mouth = None
        if self.options.mouth == "driver" and sig is not None and face is not None and frame is not None:
            mouth = self.warper.driver_mouth(frame, face.landmarks)
        t4 = c()
        return Analysis(face, sig, shown, cond, self.calibrating and dblend is None,
                        {"track": t1 - t0, "condition": (t2 - t1) + (t4 - t3), "smooth": t3 - t2}, mesh, mouth)

    def process(self, frame: np.ndarray | None, t: float, *, dblend: np.ndarray | None = None) -> FrameOutput:
        """One driver frame at ``t`` s (or a scripted expression ``dblend``) -> the rendered frame
        (its image is the caller's own copy)."""
        a = self.analyse(frame, t, dblend)
        times = dict(a.times)
        c = time.perf_counter
        t0 = c()
        wf = self.warp(a)
        t1 = c()
        crop = self.generate(a.cond, wf)
        t2 = c()
        image = self.composite(crop, wf).copy()
        times.update(warp=t1 - t0, generate=t2 - t1, composite=c() - t2)
        if crop is None:
            crop = wf.crop if wf.crop is not None else self.warper.crop_of(image)
        return FrameOutput(image, crop, a.signal is not None, a.face, {k: v.cpu().numpy() for k, v in a.cond.items()},
                           a.shown, a.calibrating, times, a.mesh)

    def commanded_landmarks(self, out: FrameOutput) -> np.ndarray:
        """The commanded 68 points ``[68,2]`` of a rendered frame, in output-photo pixels."""
        from ..geometry import to_ibug68

        return to_ibug68(out.mesh)[:, :2]
