"""Driving signals: from the driver's tracking to each model's condition (MODELS.md 1.7-5.8).

Every model gets a ``DriverSignal`` that works in two steps, so filtering happens in the most
physical space available (MODELS.md 0.5):

1. ``measure(face, frame)`` (or ``from_blendshapes`` for scripted expressions) gives a *signal*:
   a dict of numpy arrays in physical units, relative to the driver's calibrated neutral
   reference, so the driver's own face shape and resting expression never reach the target:

   * landmark models (``gcgan``, ``lmklabel``): ``motion`` [68,3], the driver's frontalised
     68-point motion in IOD units, scaled per axis to the target's face (0.4); ``lmklabel``
     also ``scores`` [6], the baseline-subtracted class rule scores (2.7);
   * ``cefgan``: ``au`` [17], AU(b_t) - AU(b_ref) (5.7);
   * ``exprgan``: ``scores`` [6] (4.7 (ii));
   * ``cet2``: ``code`` [32], E(driver crop) - c_ref, clipped to [-0.5, 0.5] (3.7).

   The neutral signal is all zeros for every model.
2. ``condition(signal, t)`` maps a (filtered) signal to the model's engine inputs (torch tensors,
   batch 1), adding the target's own state: its landmarks, its AUs, its label.

``filter_spec()`` gives the One Euro parameters per signal key (presets of 0.5; eyelid points
and AU45 use the faster eyelid preset), scaled by the user's smoothing strength.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import ReenactError
from ..filters import BLENDSHAPES, CLASS_PROBS, CODE_C, EYELIDS, LANDMARKS, LabelHysteresis, OneEuroParams
from ..geometry import Aligner, action_units, apply_affine, calibrate_driver, expression_scores, to_ibug68
from ..geometry.expressions import AU25_FULL_GAP, AU25_INDEX, AU_NAMES, LABEL_THRESHOLD, _AU_W, lip_gap_ratio
from ..geometry.retarget import face_width_height
from ..models.base import ReenactModel
from ..tracking import Face
from .target import PreparedTarget

Signal = dict[str, np.ndarray]

EYELID_68 = np.array([37, 38, 40, 41, 43, 44, 46, 47])
"""Upper and lower eyelid points of the 68-point set (filtered with the faster eyelid preset)."""
AU45 = AU_NAMES.index("AU45")


def scaled(p: OneEuroParams, strength: float) -> OneEuroParams | None:
    """Smoothing strength s: 0 = off, 1 = the preset, 2 = twice as steady (cut-offs and beta / s)."""
    if strength <= 0:
        return None
    return OneEuroParams(np.asarray(p.min_cutoff) / strength, np.asarray(p.beta) / strength, p.d_cutoff)


class DriverSignal(ABC):
    """Driver tracking -> signal -> condition for one model and one target."""

    def __init__(self, model: ReenactModel, target: PreparedTarget, *, intensity: float = 1.0):
        self.model, self.target = model, target
        self.intensity = float(intensity)
        self.calibrated = False

    # -- calibration --------------------------------------------------------------------------
    def calibrate(self, faces: Sequence[Face], frames: Sequence[np.ndarray] | None = None) -> None:
        """The driver's neutral reference from a second of neutral, camera-facing frames."""
        self.calib = calibrate_driver(faces)
        self.calibrated = True

    # -- signals ------------------------------------------------------------------------------
    @abstractmethod
    def neutral(self) -> Signal:
        """The signal that shows the target as it is (all zeros)."""

    @abstractmethod
    def measure(self, face: Face, frame: np.ndarray | None) -> Signal:
        """One tracked driver frame -> raw signal (needs calibration)."""

    @abstractmethod
    def from_blendshapes(self, dblend: np.ndarray) -> Signal:
        """A scripted expression, as baseline-subtracted blendshapes ``[52]`` -> signal."""

    @abstractmethod
    def filter_spec(self, strength: float = 1.0) -> dict[str, OneEuroParams | None]:
        """One Euro parameters per signal key."""

    @abstractmethod
    def condition(self, sig: Signal, t: float) -> dict[str, torch.Tensor]:
        """A filtered signal -> the drive engine's condition inputs (batch 1, float32, CPU)."""

    def reset(self) -> None:
        """Forget per-stream state (label hysteresis and the like)."""

    def _require_calibration(self) -> None:
        if not self.calibrated:
            raise ReenactError("the driver is not calibrated yet: calibrate on a neutral second first")


# ---------------------------------------------------------------------------------------------
_BASIS: np.ndarray | None = None


def expression_basis() -> np.ndarray:
    """Linear map from baseline-subtracted blendshapes to frontal 68-point motion, ``[52, 68, 3]``
    (IOD units), fitted by ridge regression on the training videos (``train/fit_basis.py``)."""
    global _BASIS
    if _BASIS is None:
        from importlib import resources

        with resources.files("reenact.data").joinpath("expression_basis.npz").open("rb") as f:
            _BASIS = np.load(f)["basis"].astype(np.float64)
    return _BASIS


class LandmarkSignal(DriverSignal):
    """GC-GAN and the landmark + label GAN: retargeted 68 points (MODELS.md 0.4, 1.7, 2.7)."""

    uses_label = False

    def __init__(self, model, target, *, intensity=1.0):
        super().__init__(model, target, intensity=intensity)
        self._t_frontal68 = to_ibug68(target.geometry.frontal.points)
        self._hyst = LabelHysteresis()

    def calibrate(self, faces, frames=None):
        super().calibrate(faces, frames)
        wt, ht = face_width_height(self.target.geometry.frontal.points)
        wd, hd = face_width_height(self.calib.reference)
        self._axis = np.array([wt / wd, ht / hd, wt / wd])
        self._frontalize = self.calib.frontalizer
        self._ref68 = to_ibug68(self.calib.reference)

    def neutral(self):
        s = {"motion": np.zeros((68, 3))}
        if self.uses_label:
            s["scores"] = np.zeros(6)
        return s

    def measure(self, face, frame):
        self._require_calibration()
        f68 = to_ibug68(self._frontalize(face.landmarks).points)
        s = {"motion": (f68 - self._ref68) * self._axis}
        if self.uses_label:
            s["scores"] = expression_scores(face.blendshapes, self.calib.blendshapes).astype(np.float64)
        return s

    def from_blendshapes(self, dblend):
        s = {"motion": np.tensordot(np.asarray(dblend, np.float64), expression_basis(), axes=1)}
        if self.uses_label:
            s["scores"] = expression_scores(dblend).astype(np.float64)
        return s

    def filter_spec(self, strength=1.0):
        eyelid = np.zeros((68, 1), bool)
        eyelid[EYELID_68] = True
        spec = {"motion": scaled(OneEuroParams.where(eyelid, EYELIDS, LANDMARKS), strength)}
        if self.uses_label:
            spec["scores"] = scaled(BLENDSHAPES, strength)
        return spec

    def crop_landmarks(self, sig: Signal) -> np.ndarray:
        """The commanded 68 points ``[68,2]`` in the target crop's pixels."""
        pts = self.target.geometry.frontal.to_image(self._t_frontal68 + self.intensity * sig["motion"])
        return apply_affine(self.target.M, pts[:, :2]).astype(np.float32)

    def condition(self, sig, t):
        lmk = torch.from_numpy(self.crop_landmarks(sig))[None]
        if not self.uses_label:
            from ..models.gcgan import lmk_to_vector

            return {"lmk": lmk_to_vector(lmk, self.model.res)}
        scores = np.asarray(sig["scores"], np.float64) * self.intensity
        probs = np.concatenate([[LABEL_THRESHOLD], scores])  # neutral wins below the rule threshold
        label = self._hyst.update(probs, t)
        return {"lmk_tgt": lmk, "label": self.model.label_vector(torch.tensor([label]))}

    def reset(self):
        self._hyst.reset()


class LmkLabelSignal(LandmarkSignal):
    uses_label = True


class AUSignal(DriverSignal):
    """Cascade EF-GAN: AU activations relative to the driver's rest, on top of the target's own AUs."""

    def calibrate(self, faces, frames=None):
        super().calibrate(faces, frames)
        self._au_ref = np.median(np.stack([action_units(f.blendshapes, f.landmarks) for f in faces]), 0)

    def neutral(self):
        return {"au": np.zeros(len(AU_NAMES))}

    def measure(self, face, frame):
        self._require_calibration()
        return {"au": (action_units(face.blendshapes, face.landmarks) - self._au_ref).astype(np.float64)}

    def from_blendshapes(self, dblend):
        au = np.clip(np.asarray(dblend, np.float32) @ _AU_W.T, -1, 1).astype(np.float64)
        # AU25 (lips apart) from the scripted jaw/lip motion on the target's own mouth
        f = self.target.geometry.frontal.points
        moved = f.copy()
        motion = np.tensordot(np.asarray(dblend, np.float64), expression_basis(), axes=1)
        from ..geometry.ibug68 import IBUG68_A

        moved[IBUG68_A] += motion  # the 68 points carry the lips (MP 13/14/61/291 are among them)
        au[AU25_INDEX] = (lip_gap_ratio(moved) - lip_gap_ratio(f)) / AU25_FULL_GAP
        return {"au": au}

    def filter_spec(self, strength=1.0):
        eyelid = np.zeros(len(AU_NAMES), bool)
        eyelid[AU45] = True
        return {"au": scaled(OneEuroParams.where(eyelid, EYELIDS, BLENDSHAPES), strength)}

    def condition(self, sig, t):
        au = np.clip(self.target.aus + self.intensity * np.asarray(sig["au"]), 0.0, 1.0).astype(np.float32)
        return {"au_tgt": torch.from_numpy(au)[None]}


class ExprCodeSignal(DriverSignal):
    """ExprGAN, blendshape route (MODELS.md 4.7 (ii)): class by rules + hysteresis, intensity from
    the class's rule score over its training 95th percentile; a class change goes via neutral."""

    SWITCH_S = 0.2

    def __init__(self, model, target, *, intensity=1.0):
        super().__init__(model, target, intensity=intensity)
        self.reset()

    def reset(self):
        self._hyst = LabelHysteresis()
        self._shown: int | None = None
        self._switch: tuple[int, int, float] | None = None  # (from, to, t0)

    def neutral(self):
        return {"scores": np.zeros(6)}

    def measure(self, face, frame):
        self._require_calibration()
        return {"scores": expression_scores(face.blendshapes, self.calib.blendshapes).astype(np.float64)}

    def from_blendshapes(self, dblend):
        return {"scores": expression_scores(dblend).astype(np.float64)}

    def filter_spec(self, strength=1.0):
        return {"scores": scaled(BLENDSHAPES, strength)}

    def _code(self, label: int, scores: np.ndarray) -> torch.Tensor:
        m = self.model
        if label > 0:
            s = scores[label - 1] / float(m.score_p95[label - 1])
        else:
            s = 1.0 - max(float(scores.max()), 0.0)
        s = float(np.clip(s, 0.0, 1.0))
        return m.code(torch.tensor([label]), torch.tensor([s])).float().cpu()

    def condition(self, sig, t):
        scores = np.asarray(sig["scores"], np.float64) * self.intensity
        label = self._hyst.update(np.concatenate([[LABEL_THRESHOLD], scores]), t)
        if self._shown is None:
            self._shown = label
        if label != self._shown and self._switch is None:
            self._switch = (self._shown, label, t)
        if self._switch is not None:
            a, b, t0 = self._switch
            w = (t - t0) / self.SWITCH_S
            c_neu = self._code(0, np.zeros(6)) if self.model.has_neutral else torch.full((1, self.model.k * self.model.d), -1.0)
            if w < 0.5:   # ease the old class out to neutral ...
                code = torch.lerp(self._code(a, scores), c_neu, float(w * 2))
            elif w < 1.0:  # ... then the new class in
                code = torch.lerp(c_neu, self._code(b, scores), float(w * 2 - 1))
            else:
                self._shown, self._switch = b, None
                code = self._code(b, scores)
            return {"code": code}
        return {"code": self._code(self._shown, scores)}


class Cet2CodeSignal(DriverSignal):
    """2CET-GAN: the driver's expression code from its own aligned grey crop, minus the neutral
    reference code (MODELS.md 3.7); ``encode`` runs the ``cet2_encode`` engine of the backend."""

    CLIP = 0.5

    def __init__(self, model, target, *, intensity=1.0, template=None,
                 encode: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__(model, target, intensity=intensity)
        self.aligner = Aligner(model.res, template)
        self.encode = encode or (lambda gray: model.E(gray))

    def raw_code(self, face: Face, frame: np.ndarray) -> np.ndarray:
        crop = self.aligner.crop(frame, face.landmarks).image
        gray = torch.from_numpy(crop).float().mean(-1)[None, None] * (2.0 / 255.0) - 1.0
        return self.encode(gray).detach().float().cpu().numpy().reshape(-1).astype(np.float64)

    def calibrate(self, faces, frames=None):
        if frames is None or len(frames) != len(faces):
            raise ReenactError("2CET-GAN calibration needs the driver frames with their faces")
        super().calibrate(faces, frames)
        self._c_ref = np.median(np.stack([self.raw_code(f, im) for f, im in zip(faces, frames)]), 0)

    def neutral(self):
        return {"code": np.zeros(self.model.code_dim)}

    def measure(self, face, frame):
        self._require_calibration()
        if frame is None:
            raise ReenactError("2CET-GAN reads the driver's pixels: a frame is needed")
        return {"code": np.clip(self.raw_code(face, frame) - self._c_ref, -self.CLIP, self.CLIP)}

    def from_blendshapes(self, dblend):
        m = self.model
        W = m.blend_code.detach().cpu().numpy().astype(np.float64)
        if not np.any(W):
            raise ReenactError("this 2CET-GAN checkpoint has no blendshape-to-code map (fitted at the end of "
                               "training), so a script cannot drive it: use a video or webcam driver")
        return {"code": np.clip(np.asarray(dblend, np.float64) @ W, -self.CLIP, self.CLIP)}

    def filter_spec(self, strength=1.0):
        return {"code": scaled(CODE_C, strength)}

    def condition(self, sig, t):
        code = np.clip(self.intensity * np.asarray(sig["code"]), -self.CLIP, self.CLIP).astype(np.float32)
        return {"code": torch.from_numpy(code)[None]}


SIGNALS: dict[str, type[DriverSignal]] = {
    "gcgan": LandmarkSignal, "lmklabel": LmkLabelSignal, "cefgan": AUSignal, "exprgan": ExprCodeSignal,
    "cet2": Cet2CodeSignal,
}


def make_signal(model: ReenactModel, target: PreparedTarget, **kw) -> DriverSignal:
    try:
        cls = SIGNALS[model.model_id]
    except KeyError:
        raise ReenactError(f"no driving signal defined for model {model.model_id!r}") from None
    if cls is not Cet2CodeSignal:
        kw.pop("template", None)
        kw.pop("encode", None)
    return cls(model, target, **kw)
