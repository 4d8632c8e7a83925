"""Geometry: 68-point subset, alignment, frontalisation, retargeting, heatmaps, AUs, paste-back."""
from .align import DEFAULT_TEMPLATE, AlignedCrop, Aligner, apply_affine, fit_similarity, fit_template, five_points
from .composite import FACE_OVAL, Compositor, face_mask
from .expressions import (AU_NAMES, EXPRESSION_CLASSES, action_units, clip_baseline, expression_scores, is_neutral,
                          lip_gap_ratio, pseudo_label)
from .frontalize import RIGID_SUBSET, FrontalShape, Frontalizer, euler_angles, frontalize_with_pose, pose_rotation
from .heatmaps import gaussian_heatmaps, gaussian_heatmaps_torch
from .ibug68 import eye_centres, to_ibug68
from .retarget import DriverCalibration, LandmarkRetargeter, TargetGeometry, calibrate_driver

__all__ = [n for n in dir() if not n.startswith("_")]
