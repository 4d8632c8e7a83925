"""Landmark retargeting: the driver's motion on the target's face shape (MODELS.md 0.4).

The driver is calibrated on a neutral, camera-facing second (``calibrate_driver``). Per frame,
its frontalised motion ``D_t = F_t - F_ref`` (IOD units) is scaled per axis by the ratio of the
target's face width/height to the driver's and added to the target's own frontal shape; the
result is rotated back into the target photo. The target keeps its geometry; the driver
contributes motion only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..tracking.landmarker import Face
from .frontalize import FrontalShape, Frontalizer, frontalize_with_pose
from .ibug68 import IBUG68_A, IBUG68_B

_JAW_R, _JAW_L, _NOSE_TOP, _CHIN = 0, 16, 27, 8


def _p68(points: np.ndarray, i: int) -> np.ndarray:
    return (points[IBUG68_A[i]] + points[IBUG68_B[i]]) / 2


def face_width_height(frontal: np.ndarray) -> tuple[float, float]:
    """Face width (iBUG 0 to 16) and height (27 to 8) of a frontal shape, in its units (x-y plane)."""
    w = np.linalg.norm((_p68(frontal, _JAW_R) - _p68(frontal, _JAW_L))[:2])
    h = np.linalg.norm((_p68(frontal, _NOSE_TOP) - _p68(frontal, _CHIN))[:2])
    return float(w), float(h)


@dataclass(frozen=True, slots=True)
class DriverCalibration:
    """The driver's neutral reference: frontal shape ``[478,3]`` (IOD units), blendshapes ``[52]``."""

    reference: np.ndarray
    blendshapes: np.ndarray
    num_frames: int

    @property
    def frontalizer(self) -> Frontalizer:
        return Frontalizer(self.reference)


def calibrate_driver(faces: Sequence[Face]) -> DriverCalibration:
    """Per-element medians over neutral calibration frames (about 1 s, MODELS.md 0.4)."""
    faces = [f for f in faces if f is not None]
    if not faces:
        raise ValueError("calibration needs at least one frame with a face")
    first = frontalize_with_pose(faces[0].landmarks, faces[0].transform)
    fr = Frontalizer(first.points)
    shapes = np.stack([fr(f.landmarks).points for f in faces])
    blends = np.stack([f.blendshapes for f in faces])
    return DriverCalibration(np.median(shapes, 0), np.median(blends, 0).astype(np.float32), len(faces))


@dataclass(frozen=True, slots=True)
class TargetGeometry:
    """The target photo's frontal shape and the similarity back into the photo."""

    frontal: FrontalShape
    blendshapes: np.ndarray

    @classmethod
    def from_face(cls, face: Face) -> TargetGeometry:
        return cls(frontalize_with_pose(face.landmarks, face.transform), face.blendshapes)


class LandmarkRetargeter:
    """Maps driver frames to target-photo landmarks (pixels of the target photo)."""

    def __init__(self, calib: DriverCalibration, target: TargetGeometry, gain: float = 1.0):
        self.calib = calib
        self.target = target
        self.gain = float(gain)
        self._frontalize = calib.frontalizer
        wt, ht = face_width_height(target.frontal.points)
        wd, hd = face_width_height(calib.reference)
        self.axis_scale = np.array([wt / wd, ht / hd, wt / wd])

    def motion(self, face: Face) -> np.ndarray:
        """The driver's frontal motion ``[478,3]`` (IOD units) relative to its neutral reference."""
        return self._frontalize(face.landmarks).points - self.calib.reference

    def __call__(self, face: Face) -> np.ndarray:
        """Target landmarks ``[478,3]`` in target-photo pixels carrying the driver's motion."""
        return self.apply_motion(self.motion(face))

    def apply_motion(self, motion: np.ndarray) -> np.ndarray:
        shape = self.target.frontal.points + self.gain * motion * self.axis_scale
        return self.target.frontal.to_image(shape)
