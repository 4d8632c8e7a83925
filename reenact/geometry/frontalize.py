"""Frontalisation of the 478-point mesh using the head pose (MODELS.md 0.4).

Image-space points are ``P = (x, y, z)`` in pixels (z in x-pixel units, smaller = nearer).
MediaPipe's facial transformation matrix maps its canonical face (y up, z towards the viewer)
to camera space (y up, the camera looking down -z); image space has y down and z pointing
away, so the two differ by ``C = diag(1, -1, -1)`` and the head rotation in image space is
``C R C``. A frontal shape is expressed in IOD units (inter-ocular distance between the two eye
centres) with its origin midway between the eyes: invariant to camera distance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ibug68 import eye_centres

RIGID_SUBSET = np.array([10, 338, 297, 332, 109, 67, 103, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1,
                         127, 356, 234, 454, 133, 362], np.int64)
"""Mesh points that barely move with expression: forehead, nose bridge, face sides, inner eye corners."""

_C = np.diag([1.0, -1.0, -1.0])


def pose_rotation(transform: np.ndarray) -> np.ndarray:
    """Head rotation in image space (3x3, det +1) from MediaPipe's 4x4 facial transformation matrix."""
    A = np.asarray(transform, np.float64)[:3, :3]
    U, _, Vt = np.linalg.svd(A)  # drop the scale, keep the nearest rotation
    R = U @ Vt
    if np.linalg.det(R) < 0:
        U[:, -1] *= -1
        R = U @ Vt
    return _C @ R @ _C


def euler_angles(R: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of an image-space head rotation; 0 for a camera-facing face.

    yaw > 0: the face turns towards the image's right; pitch > 0: chin up; roll > 0: the head
    tilts clockwise in the image.
    """
    Rc = _C @ R @ _C  # back to camera space (y up)
    pitch = np.degrees(np.arcsin(np.clip(-Rc[1, 2], -1, 1)))
    yaw = np.degrees(np.arctan2(Rc[0, 2], Rc[2, 2]))
    roll = np.degrees(np.arctan2(Rc[1, 0], Rc[1, 1]))
    return float(yaw), float(pitch), float(-roll)


def rotation_angle(R: np.ndarray) -> float:
    """Angle (degrees) of a rotation matrix."""
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))


def umeyama(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~= s R src + t`` (Umeyama 1991), proper rotation only.

    src, dst: ``[N, 3]``. Returns (s, R [3,3], t [3]).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    xs, xd = src - ms, dst - md
    cov = xd.T @ xs / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    var = (xs ** 2).sum() / len(src)
    s = float(np.trace(np.diag(S) @ D) / var) if scale else 1.0
    return s, R, md - s * R @ ms


@dataclass(frozen=True, slots=True)
class FrontalShape:
    """A frontalised mesh and the similarity back to the image it came from.

    points: ``[478, 3]`` frontal shape in IOD units, origin midway between the eye centres.
    scale, rotation [3,3], translation [3]: ``image_points = scale * rotation @ p + translation``.
    """

    points: np.ndarray
    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def to_image(self, points: np.ndarray | None = None) -> np.ndarray:
        """Frontal points (default: this shape's own) back to image pixels, ``[N, 3]``."""
        p = self.points if points is None else np.asarray(points, np.float64)
        return self.scale * p @ self.rotation.T + self.translation


def frontalize_with_pose(landmarks: np.ndarray, transform: np.ndarray) -> FrontalShape:
    """Frontalise one face using the inverse of its head rotation (used for reference frames)."""
    P = np.asarray(landmarks, np.float64)
    R = pose_rotation(transform)
    r, l = eye_centres(P[None])
    c = (r[0] + l[0]) / 2
    Q = (P - c) @ R  # = R^T (P - c) row-wise
    qr, ql = eye_centres(Q[None])
    iod = float(np.linalg.norm(qr[0] - ql[0]))
    if iod < 1e-6:
        raise ValueError("degenerate face: eye centres coincide")
    return FrontalShape(Q / iod, iod, R, c)


class Frontalizer:
    """Frontalises meshes onto a reference frontal shape by a similarity fit on ``RIGID_SUBSET``."""

    def __init__(self, reference: np.ndarray):
        self.reference = np.asarray(reference, np.float64)
        if self.reference.shape != (478, 3):
            raise ValueError(f"reference must be [478,3], got {self.reference.shape}")

    def __call__(self, landmarks: np.ndarray) -> FrontalShape:
        P = np.asarray(landmarks, np.float64)
        s, R, t = umeyama(P[RIGID_SUBSET], self.reference[RIGID_SUBSET])
        F = s * P @ R.T + t
        # inverse similarity: P = (1/s) R^T (F - t)
        return FrontalShape(F, 1.0 / s, R.T, -(R.T @ t) / s)
