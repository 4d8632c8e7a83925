"""Fit the expression basis: blendshapes -> frontal motion of the 478-point mesh (MODELS.md 0.4).

Scripted expressions (``reenact run --driver script:NAME``) are written as blendshape targets; the
mesh warp and the landmark-driven models need landmark motion. This fits a linear map B
``[52, 478, 3]`` (the 68-point motion follows from it) by ridge
regression over a prepared dataset: per clip, the frontalised 68 points (IOD units) minus the
clip's neutral reference, against the blendshapes minus the clip's resting baseline (the same
quantities the live driver produces after calibration).

    python -m reenact.train.fit_basis data/faces --out reenact/data/expression_basis.npz
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from reenact.geometry import Frontalizer, clip_baseline, frontalize_with_pose, to_ibug68
from reenact.utils import atomic_path

from .dataset import load_dataset


def clip_motion(landmarks: np.ndarray, pose44: np.ndarray, blend: np.ndarray, neutral: np.ndarray):
    """One clip's (dblend [N,52], motion [N,478,3]) relative to its neutral frames."""
    rest = np.flatnonzero(neutral)
    first = int(rest[0]) if len(rest) else 0
    fr = Frontalizer(frontalize_with_pose(landmarks[first], pose44[first]).points)
    frontal = np.stack([fr(p).points for p in landmarks])
    ref = np.median(frontal[rest] if len(rest) else frontal, 0)
    ref = Frontalizer(ref)  # re-fit every frame onto the median reference
    frontal = np.stack([ref(p).points for p in landmarks])
    rest_shape = np.median(frontal[rest] if len(rest) else frontal, 0)
    return blend - clip_baseline(blend), frontal - rest_shape


def fit_basis(dataset: str, ridge: float = 1.0) -> tuple[np.ndarray, dict]:
    ds = load_dataset(dataset)
    lm = np.asarray(ds["landmarks"], np.float64) / float(ds.meta.get("landmark_scale", 1.0))
    pose, blend = np.asarray(ds["pose44"], np.float64), np.asarray(ds["blendshapes"], np.float64)
    neutral, clip = np.asarray(ds["neutral"], bool), np.asarray(ds["clip"])
    X, Y = [], []
    for c in np.unique(clip):
        i = np.flatnonzero(clip == c)
        db, mo = clip_motion(lm[i], pose[i], blend[i], neutral[i])
        X.append(db)
        Y.append(mo.reshape(len(i), -1))
    X, Y = np.concatenate(X), np.concatenate(Y)
    X[:, 0] = 0.0  # "_neutral" is not an expression
    A = X.T @ X + ridge * np.eye(X.shape[1])
    B = np.linalg.solve(A, X.T @ Y)
    pred = X @ B
    r2 = 1.0 - ((Y - pred) ** 2).sum() / ((Y - Y.mean(0)) ** 2).sum()
    B = B.reshape(52, 478, 3)
    y68, p68 = to_ibug68(Y.reshape(len(Y), 478, 3)), to_ibug68(pred.reshape(len(Y), 478, 3))
    r2_68 = 1.0 - ((y68 - p68) ** 2).sum() / ((y68 - y68.mean(0)) ** 2).sum()
    return B.astype(np.float32), {"frames": int(len(X)), "clips": int(len(np.unique(clip))), "ridge": ridge,
                                  "r2": float(r2), "r2_68": float(r2_68)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--out", default="reenact/data/expression_basis.npz")
    ap.add_argument("--ridge", type=float, default=1.0)
    a = ap.parse_args(argv)
    B, info = fit_basis(a.dataset, a.ridge)
    with atomic_path(a.out) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, basis=B.astype(np.float16), **{k: np.asarray(v) for k, v in info.items()})
    print(f"basis [52,478,3] (R^2 of its 68 points {info['r2_68']:.3f}) from {info['frames']} frames of {info['clips']} clips, R^2 {info['r2']:.3f} -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
