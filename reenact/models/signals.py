"""Driving signals: from the driver's tracking to the warp's motion and each model's condition
(MODELS.md 0.4, 1.7-5.8).

Every model class names its ``DriverSignal`` (``ReenactModel.Signal``). A signal works in two
steps, so filtering happens in the most physical space available (MODELS.md 0.5):

1. ``measure(face, frame)`` (or ``from_blendshapes`` for scripted expressions) gives a *signal*:
   a dict of numpy arrays in physical units, relative to the driver's calibrated neutral
   reference, so the driver's own face shape and resting expression never reach the target.
   Every model's signal carries what the mesh warp needs:

   * ``motion`` [478,3]: the driver's frontalised motion of the whole mesh (IOD units, scaled
     per axis to the target's face), irises included (gaze);
   * ``pose`` [3]: the driver's head turn since its calibrated rest, (yaw, pitch, roll) degrees;

   and the model's own keys: ``scores`` [6] (``lmklabel``, ``exprgan``: baseline-subtracted class
   rule scores, 2.7), ``au`` [17] (``cefgan``: AU(b_t) - AU(b_ref), 5.7), ``code`` [32] (``cet2``:
   E(driver crop) - c_ref, clipped to [-0.5, 0.5], 3.7). The neutral signal is all zeros.
2. ``mesh(signal)`` gives the target's moved 478 points in photo pixels (``LandmarkRetargeter``:
   motion on the target's own shape, turned by the eased head pose), and ``condition(signal, t)``
   the model's engine inputs (torch tensors, batch 1), adding the target's own state: its
   landmarks, its AUs, its label.

``filter_spec()`` gives the One Euro parameters per signal key (presets of 0.5; eyelid and iris
points and AU45 use the faster eyelid preset), scaled by the user's smoothing strength.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from ..errors import ReenactError
from ..filters import BLENDSHAPES, CODE_C, EYELIDS, MESH, POSE, LabelHysteresis, OneEuroParams
from ..geometry import Aligner, LandmarkRetargeter, action_units, apply_affine, calibrate_driver, expression_scores, to_ibug68
from ..geometry.expressions import AU25_FULL_GAP, AU25_INDEX, AU_NAMES, LABEL_THRESHOLD, _AU_W, lip_gap_ratio
from ..geometry.warp import EYE_CONTOURS, IRISES
from ..tracking import Face

if TYPE_CHECKING:
    from ..runtime.target import PreparedTarget
    from .base import ReenactModel

Signal = dict[str, np.ndarray]

AU45 = AU_NAMES.index("AU45")
FAST_POINTS = np.unique(np.concatenate([*EYE_CONTOURS, *IRISES]))
"""Eyelid and iris points of the 478-point mesh (filtered with the faster eyelid preset: blinks
and saccades are quick)."""


def scaled(p: OneEuroParams, strength: float) -> OneEuroParams | None:
    """Smoothing strength s: 0 = off, 1 = the preset, 2 = twice as steady (cut-offs and beta / s)."""
    if strength <= 0:
        return None
    return OneEuroParams(np.asarray(p.min_cutoff) / strength, np.asarray(p.beta) / strength, p.d_cutoff)


_BASIS: np.ndarray | None = None


def expression_basis() -> np.ndarray:
    """Linear map from baseline-subtracted blendshapes to frontal motion of the 478-point mesh,
    ``[52, 478, 3]`` (IOD units), fitted by ridge regression on the training videos
    (``train/fit_basis.py``)."""
    global _BASIS
    if _BASIS is None:
        from importlib import resources

        with resources.files("reenact.data").joinpath("expression_basis.npz").open("rb") as f:
            _BASIS = np.load(f)["basis"].astype(np.float64)
        if _BASIS.shape != (52, 478, 3):
            raise ReenactError(f"the shipped expression basis has shape {_BASIS.shape}, expected (52, 478, 3)")
    return _BASIS


class DriverSignal:
    """Driver tracking -> signal -> (mesh, condition) for one model and one target.

    The base class is the whole signal of a model without a condition (the ``warp`` model):
    ``motion`` and ``pose`` for the mesh warp. Subclasses add their model's keys through the
    ``_measure`` / ``_from_blendshapes`` / ``_neutral`` / ``_filter_spec`` hooks and implement
    ``condition``.

    pose / gaze: whether the driver's head turn and iris motion reach the target.
    """

    def __init__(self, model: ReenactModel, target: PreparedTarget, *, intensity: float = 1.0, pose: bool = True,
                 gaze: bool = True, **_unused):
        self.model, self.target = model, target
        self.intensity = float(intensity)
        self.pose, self.gaze = bool(pose), bool(gaze)
        self.calibrated = False
        self.calib = None
        self.retarget = LandmarkRetargeter(None, target.geometry, pose=pose, gaze=gaze)

    # -- calibration --------------------------------------------------------------------------
    def calibrate(self, faces: Sequence[Face], frames: Sequence[np.ndarray] | None = None) -> None:
        """The driver's neutral reference from a second of neutral, camera-facing frames."""
        self.calib = calibrate_driver(faces)
        self.retarget = LandmarkRetargeter(self.calib, self.target.geometry, pose=self.pose, gaze=self.gaze)
        self.calibrated = True

    # -- signals ------------------------------------------------------------------------------
    def neutral(self) -> Signal:
        """The signal that shows the target as it is (all zeros)."""
        return {"motion": np.zeros((478, 3)), "pose": np.zeros(3), **self._neutral()}

    def measure(self, face: Face, frame: np.ndarray | None) -> Signal:
        """One tracked driver frame -> raw signal (needs calibration)."""
        self._require_calibration()
        motion, pose = self.retarget.measure(face)
        return {"motion": motion, "pose": pose, **self._measure(face, frame)}

    def from_blendshapes(self, dblend: np.ndarray) -> Signal:
        """A scripted expression -> signal: baseline-subtracted blendshapes ``[52]``, optionally
        followed by a head turn (yaw, pitch, roll) in degrees (``[55]``, ``reenact.runtime.scripts``)."""
        v = np.asarray(dblend, np.float64).reshape(-1)
        if v.shape[0] not in (52, 55):
            raise ReenactError(f"a scripted expression has 52 blendshapes (+3 head angles), got {v.shape[0]} values")
        b, pose = v[:52], (v[52:55] if v.shape[0] == 55 else np.zeros(3))
        motion = np.tensordot(b, expression_basis(), axes=1)
        return {"motion": motion, "pose": pose.copy(), **self._from_blendshapes(b, motion)}

    def filter_spec(self, strength: float = 1.0) -> dict[str, OneEuroParams | None]:
        """One Euro parameters per signal key."""
        fast = np.zeros((478, 1), bool)
        fast[FAST_POINTS] = True
        return {"motion": scaled(OneEuroParams.where(fast, EYELIDS, MESH), strength),
                "pose": scaled(POSE, strength), **self._filter_spec(strength)}

    def mesh(self, sig: Signal) -> np.ndarray:
        """The target's moved mesh ``[478,3]`` in photo pixels for a (filtered) signal."""
        return self.retarget.apply(self.intensity * np.asarray(sig["motion"]), np.asarray(sig["pose"]))

    def crop_landmarks(self, sig: Signal) -> np.ndarray:
        """The commanded 68 points ``[68,2]`` in the target crop's pixels."""
        return apply_affine(self.target.M, to_ibug68(self.mesh(sig))[:, :2]).astype(np.float32)

    def condition(self, sig: Signal, t: float):
        """A filtered signal -> the model's frozen ``Condition`` (batch 1, float32, CPU)."""
        return self.model.Condition()

    def reset(self) -> None:
        """Forget per-stream state (label hysteresis and the like)."""

    # -- hooks of the models' own keys ----------------------------------------------------------
    def _neutral(self) -> Signal:
        return {}

    def _measure(self, face: Face, frame: np.ndarray | None) -> Signal:
        return {}

    def _from_blendshapes(self, dblend: np.ndarray, motion: np.ndarray) -> Signal:
        return {}

    def _filter_spec(self, strength: float) -> dict[str, OneEuroParams | None]:
        return {}

    def _require_calibration(self) -> None:
        if not self.calibrated:
            raise ReenactError("the driver is not calibrated yet: calibrate on a neutral second first")


class LandmarkSignal(DriverSignal):
    """GC-GAN: the 68 retargeted points in the target's crop (MODELS.md 0.4, 1.7)."""

    def condition(self, sig, t):
        from .gcgan import lmk_to_vector

        return self.model.Condition(lmk_to_vector(torch.from_numpy(self.crop_landmarks(sig))[None], self.model.res))


class ScoresSignal(DriverSignal):
    """Adds ``scores`` [6]: the baseline-subtracted class rule scores (MODELS.md 2.7)."""

    def _neutral(self):
        return {"scores": np.zeros(6)}

    def _measure(self, face, frame):
        return {"scores": expression_scores(face.blendshapes, self.calib.blendshapes).astype(np.float64)}

    def _from_blendshapes(self, dblend, motion):
        return {"scores": expression_scores(dblend).astype(np.float64)}

    def _filter_spec(self, strength):
        return {"scores": scaled(BLENDSHAPES, strength)}


class LmkLabelSignal(ScoresSignal):
    """The landmark + label GAN: the 68 retargeted points and a label from rule scores (2.7)."""

    def __init__(self, model, target, **kw):
        super().__init__(model, target, **kw)
        self._hyst = LabelHysteresis()

    def condition(self, sig, t):
        lmk = torch.from_numpy(self.crop_landmarks(sig))[None]
        scores = np.asarray(sig["scores"], np.float64) * self.intensity
        probs = np.concatenate([[LABEL_THRESHOLD], scores])  # neutral wins below the rule threshold
        label = self._hyst.update(probs, t)
        return self.model.Condition(lmk, self.model.label_vector(torch.tensor([label])))

    def reset(self):
        self._hyst.reset()


class AUSignal(DriverSignal):
    """Cascade EF-GAN: AU activations relative to the driver's rest, on top of the target's own AUs."""

    def calibrate(self, faces, frames=None):
        super().calibrate(faces, frames)
        self._au_ref = np.median(np.stack([action_units(f.blendshapes, f.landmarks) for f in faces]), 0)

    def _neutral(self):
        return {"au": np.zeros(len(AU_NAMES))}

    def _measure(self, face, frame):
        return {"au": (action_units(face.blendshapes, face.landmarks) - self._au_ref).astype(np.float64)}

    def _from_blendshapes(self, dblend, motion):
        au = np.clip(np.asarray(dblend, np.float32) @ _AU_W.T, -1, 1).astype(np.float64)
        # AU25 (lips apart) from the scripted mesh motion on the target's own mouth
        f = self.target.geometry.frontal.points
        au[AU25_INDEX] = (lip_gap_ratio(f + motion) - lip_gap_ratio(f)) / AU25_FULL_GAP
        return {"au": au}

    def _filter_spec(self, strength):
        eyelid = np.zeros(len(AU_NAMES), bool)
        eyelid[AU45] = True
        return {"au": scaled(OneEuroParams.where(eyelid, EYELIDS, BLENDSHAPES), strength)}

    def condition(self, sig, t):
        au = np.clip(self.target.aus + self.intensity * np.asarray(sig["au"]), 0.0, 1.0).astype(np.float32)
        return self.model.Condition(torch.from_numpy(au)[None])


class ExprCodeSignal(ScoresSignal):
    """ExprGAN, blendshape route (MODELS.md 4.7 (ii)): class by rules + hysteresis, intensity from
    the class's rule score over its training 95th percentile; a class change goes via neutral."""

    SWITCH_S = 0.2

    def __init__(self, model, target, **kw):
        super().__init__(model, target, **kw)
        self.reset()

    def reset(self):
        self._hyst = LabelHysteresis()
        self._shown: int | None = None
        self._switch: tuple[int, int, float] | None = None  # (from, to, t0)

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
            return self.model.Condition(code)
        return self.model.Condition(self._code(self._shown, scores))


class Cet2CodeSignal(DriverSignal):
    """2CET-GAN: the driver's expression code from its own aligned grey crop, minus the neutral
    reference code (MODELS.md 3.7); ``encode`` runs the ``cet2_encode`` engine of the backend.
    Scripts go through the blendshape-to-code map a trained checkpoint carries."""

    CLIP = 0.5

    def __init__(self, model, target, *, template=None, encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 **kw):
        super().__init__(model, target, **kw)
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

    def _neutral(self):
        return {"code": np.zeros(self.model.code_dim)}

    def _measure(self, face, frame):
        if frame is None:
            raise ReenactError("2CET-GAN reads the driver's pixels: a frame is needed")
        return {"code": np.clip(self.raw_code(face, frame) - self._c_ref, -self.CLIP, self.CLIP)}

    def _from_blendshapes(self, dblend, motion):
        W = self.model.blend_code.detach().cpu().numpy().astype(np.float64)
        if not np.any(W):
            raise ReenactError("this 2CET-GAN checkpoint has no blendshape-to-code map (fitted at the end of "
                               "training), so a script cannot drive it: use a video or webcam driver")
        return {"code": np.clip(np.asarray(dblend, np.float64) @ W, -self.CLIP, self.CLIP)}

    def _filter_spec(self, strength):
        return {"code": scaled(CODE_C, strength)}

    def condition(self, sig, t):
        code = np.clip(self.intensity * np.asarray(sig["code"]), -self.CLIP, self.CLIP).astype(np.float32)
        return self.model.Condition(torch.from_numpy(code)[None])
