"""Landmark retargeting: the driver's motion on the target's face shape (MODELS.md 0.4).

The driver is calibrated on a neutral, camera-facing second (``calibrate_driver``). Per frame,
its frontalised motion ``D_t = F_t - F_ref`` (IOD units) is scaled per axis by the ratio of the
target's face width/height to the driver's and added to the target's own frontal shape; the
result is rotated back into the target photo. The target keeps its geometry; the driver
contributes motion only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..tracking.landmarker import Face
from .frontalize import FrontalShape, Frontalizer, euler_angles, frontalize_with_pose
from .ibug68 import IBUG68_A, IBUG68_B
from .warp import EYE_CONTOURS, IRISES

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
    """The driver's neutral reference: frontal shape ``[478,3]`` (IOD units), blendshapes ``[52]``,
    and its resting head rotation ``[3,3]`` (image space, relative to the frontal reference)."""

    reference: np.ndarray
    blendshapes: np.ndarray
    num_frames: int
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    @property
    def frontalizer(self) -> Frontalizer:
        return Frontalizer(self.reference)


def mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """The chordal mean of rotation matrices ``[N,3,3]`` (the nearest rotation to their average)."""
    U, _, Vt = np.linalg.svd(np.asarray(rotations, np.float64).mean(0))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def calibrate_driver(faces: Sequence[Face]) -> DriverCalibration:
    """Per-element medians over neutral calibration frames (about 1 s, MODELS.md 0.4)."""
    faces = [f for f in faces if f is not None]
    if not faces:
        raise ValueError("calibration needs at least one frame with a face")
    first = frontalize_with_pose(faces[0].landmarks, faces[0].transform)
    fr = Frontalizer(first.points)
    shapes = np.stack([fr(f.landmarks).points for f in faces])
    blends = np.stack([f.blendshapes for f in faces])
    ref = Frontalizer(np.median(shapes, 0))
    rot = mean_rotation(np.stack([ref(f.landmarks).rotation for f in faces]))
    return DriverCalibration(ref.reference, np.median(blends, 0).astype(np.float32), len(faces), rot)


@dataclass(frozen=True, slots=True)
class TargetGeometry:
    """The target photo's frontal shape and the similarity back into the photo."""

    frontal: FrontalShape
    blendshapes: np.ndarray

    @classmethod
    def from_face(cls, face: Face) -> TargetGeometry:
        return cls(frontalize_with_pose(face.landmarks, face.transform), face.blendshapes)


# --------------------------------------------------------------------------- head pose

MAX_TURN_DEG = 25.0
"""Yaw and pitch are eased toward this limit (a 2D warp of a photo still looks right below it)."""
POSE_PIVOT = np.array([0.0, 0.6, 1.2])
"""The point the head turns about, in frontal IOD units (between the eyes = origin, y down, z away
from the camera): below the eye line and behind the face, roughly the head's centre."""


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Image-space rotation from (yaw, pitch, roll) degrees; the inverse of ``euler_angles``."""
    a, b, c = np.radians([yaw, pitch, -roll])
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    Ry = np.array([[ca, 0, sa], [0, 1, 0], [-sa, 0, ca]])
    Rx = np.array([[1, 0, 0], [0, cb, -sb], [0, sb, cb]])
    Rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    C = np.diag([1.0, -1.0, -1.0])
    return C @ (Ry @ Rx @ Rz) @ C


def ease_pose(pose: np.ndarray, limit: float = MAX_TURN_DEG) -> np.ndarray:
    """(yaw, pitch, roll) degrees with yaw and pitch eased smoothly to +-``limit``; roll is kept."""
    p = np.asarray(pose, np.float64).copy()
    p[:2] = limit * np.tanh(p[:2] / limit)
    return p


# --------------------------------------------------------------------------- retargeting

class LandmarkRetargeter:
    """The one retargeting of the driver's motion onto the target photo (MODELS.md 0.4).

    Driver side (needs the driver's calibration): ``measure(face)`` gives the driver's frontal
    motion of all 478 points relative to its neutral reference, in IOD units and scaled per axis
    to the target's face (``[478,3]``), and its head rotation relative to its calibrated rest as
    (yaw, pitch, roll) degrees. Target side: ``apply(motion, pose)`` adds the motion to the
    target's own frontal shape, turns it by the (eased) head rotation about ``POSE_PIVOT`` and
    projects it into the target photo (pixels, ``[478,3]``). The target keeps its geometry; the
    driver contributes motion only.

    gaze=False keeps the irises centred in their eyes (they follow the eye contour's motion);
    pose=False leaves the target's head still.
    """

    def __init__(self, calib: DriverCalibration | None, target: TargetGeometry, gain: float = 1.0, *,
                 pose: bool = True, gaze: bool = True, max_turn_deg: float = MAX_TURN_DEG):
        self.calib = calib
        self.target = target
        self.gain = float(gain)
        self.pose, self.gaze, self.max_turn_deg = bool(pose), bool(gaze), float(max_turn_deg)
        self.axis_scale = np.ones(3)
        if calib is not None:
            self._frontalize = calib.frontalizer
            wt, ht = face_width_height(target.frontal.points)
            wd, hd = face_width_height(calib.reference)
            self.axis_scale = np.array([wt / wd, ht / hd, wt / wd])

    # -- driver side ------------------------------------------------------------------------
    def measure(self, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(motion ``[478,3]`` scaled to the target, head pose ``[3]`` degrees) of a driver frame."""
        if self.calib is None:
            raise ValueError("the retargeter has no driver calibration")
        fs = self._frontalize(face.landmarks)
        motion = (fs.points - self.calib.reference) * self.axis_scale
        rel = fs.rotation @ self.calib.rotation.T  # camera-frame turn since the calibrated rest
        return motion, np.array(euler_angles(rel))

    # -- target side ------------------------------------------------------------------------
    def frontal_shape(self, motion: np.ndarray, pose: np.ndarray | None = None) -> np.ndarray:
        """The target's frontal shape ``[478,3]`` carrying ``motion`` (x gain), turned by ``pose``."""
        m = self.gain * np.asarray(motion, np.float64)
        if not self.gaze:
            m = m.copy()
            for eye, iris in zip(EYE_CONTOURS, IRISES):
                m[iris] = m[eye].mean(0)
        shape = self.target.frontal.points + m
        if self.pose and pose is not None and np.any(pose):
            dR = rotation_from_euler(*ease_pose(pose, self.max_turn_deg))
            R_T = self.target.frontal.rotation
            dRf = R_T.T @ dR @ R_T  # the camera-frame turn, in the target's frontal frame
            shape = (shape - POSE_PIVOT) @ dRf.T + POSE_PIVOT
        return shape

    def apply(self, motion: np.ndarray, pose: np.ndarray | None = None) -> np.ndarray:
        """Target-photo landmarks ``[478,3]`` (pixels) for a motion and a head pose."""
        return self.target.frontal.to_image(self.frontal_shape(motion, pose))

    def __call__(self, face: Face) -> np.ndarray:
        """Target landmarks ``[478,3]`` in target-photo pixels carrying the driver's motion and pose."""
        return self.apply(*self.measure(face))
