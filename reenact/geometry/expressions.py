"""Expression signals derived from MediaPipe: action units, pseudo-labels, neutral flag.

AUs follow the project's convention (MODELS.md 5.7): 17 intensities in [0, 1] computed from
blendshapes (and, for AU25, the inner-lip gap of the mesh), gains 1.0 unless fitted. Expression
classes come from blendshape rules (MODELS.md 2.7): each class scores the mean of its
baseline-subtracted blendshapes (left/right pairs averaged first); the top class wins if its
score exceeds 0.25, else "neutral".
"""
from __future__ import annotations

import numpy as np

from ..tracking.landmarker import BLENDSHAPE_INDEX

AU_NAMES = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
            "AU20", "AU23", "AU25", "AU26", "AU45")

# AU -> blendshape stems; "X*" means the mean of XLeft and XRight.
_AU_SOURCES = {
    "AU01": ("browInnerUp",), "AU02": ("browOuterUp*",), "AU04": ("browDown*",), "AU05": ("eyeWide*",),
    "AU06": ("cheekSquint*",), "AU07": ("eyeSquint*",), "AU09": ("noseSneer*",), "AU10": ("mouthUpperUp*",),
    "AU12": ("mouthSmile*",), "AU14": ("mouthDimple*",), "AU15": ("mouthFrown*",), "AU17": ("mouthShrugLower",),
    "AU20": ("mouthStretch*",), "AU23": ("mouthPress*",), "AU26": ("jawOpen",), "AU45": ("eyeBlink*",),
}
AU25_INDEX = AU_NAMES.index("AU25")
AU25_FULL_GAP = 0.15
"""Inner-lip gap / mouth width at which AU25 reaches 1."""

EXPRESSION_CLASSES = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear")
_CLASS_SOURCES = {
    "happy": ("mouthSmile*", "cheekSquint*"),
    "surprise": ("browInnerUp", "browOuterUp*", "eyeWide*", "jawOpen"),
    "sad": ("browInnerUp", "mouthFrown*"),
    "angry": ("browDown*", "eyeSquint*", "mouthPress*"),
    "disgust": ("noseSneer*", "mouthUpperUp*"),
    "fear": ("browInnerUp", "eyeWide*", "mouthStretch*"),
}
LABEL_THRESHOLD = 0.25
NEUTRAL_MAX_SCORE = 0.10
NEUTRAL_MAX_JAW = 0.10


def _term_matrix(terms_per_row: list[tuple[str, ...]]) -> np.ndarray:
    """Weights ``[R, 52]``: each row the mean over its terms, a starred term the mean of L/R."""
    W = np.zeros((len(terms_per_row), 52), np.float32)
    for r, terms in enumerate(terms_per_row):
        for term in terms:
            names = (term[:-1] + "Left", term[:-1] + "Right") if term.endswith("*") else (term,)
            for n in names:
                W[r, BLENDSHAPE_INDEX[n]] += 1.0 / (len(names) * len(terms))
    return W


_AU_W = _term_matrix([_AU_SOURCES.get(n, ()) for n in AU_NAMES])
_CLASS_W = _term_matrix([_CLASS_SOURCES[c] for c in EXPRESSION_CLASSES[1:]])
_JAW = BLENDSHAPE_INDEX["jawOpen"]


def lip_gap_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap |MP13 - MP14| over mouth width |MP61 - MP291|, ``[..., 478, >=2] -> [...]``."""
    lm = np.asarray(landmarks, np.float64)[..., :2]
    gap = np.linalg.norm(lm[..., 13, :] - lm[..., 14, :], axis=-1)
    width = np.linalg.norm(lm[..., 61, :] - lm[..., 291, :], axis=-1)
    return gap / np.maximum(width, 1e-6)


def action_units(blendshapes: np.ndarray, landmarks: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray:
    """17 AU intensities in [0, 1], ordered as ``AU_NAMES``: ``[..., 52], [..., 478, D] -> [..., 17]``."""
    au = np.asarray(blendshapes, np.float32) @ _AU_W.T
    au[..., AU25_INDEX] = lip_gap_ratio(landmarks) / AU25_FULL_GAP
    if gains is not None:
        au = au * np.asarray(gains, np.float32)
    return np.clip(au, 0.0, 1.0).astype(np.float32)


def expression_scores(blendshapes: np.ndarray, baseline: np.ndarray | None = None) -> np.ndarray:
    """Rule scores of the six non-neutral classes, ``[..., 52] -> [..., 6]`` (EXPRESSION_CLASSES[1:])."""
    b = np.asarray(blendshapes, np.float32)
    if baseline is not None:
        b = b - np.asarray(baseline, np.float32)
    return b @ _CLASS_W.T


def pseudo_label(blendshapes: np.ndarray, baseline: np.ndarray | None = None,
                 threshold: float = LABEL_THRESHOLD) -> np.ndarray:
    """Expression class index into ``EXPRESSION_CLASSES`` (0 = neutral), ``[..., 52] -> [...]`` int64."""
    s = expression_scores(blendshapes, baseline)
    top = s.argmax(-1)
    return np.where(s.max(-1) > threshold, top + 1, 0).astype(np.int64)


def is_neutral(blendshapes: np.ndarray, baseline: np.ndarray | None = None) -> np.ndarray:
    """Neutral flag [D]: every class score below 0.10 and the jaw barely open. ``[..., 52] -> [...]`` bool."""
    b = np.asarray(blendshapes, np.float32)
    jaw = b[..., _JAW] - (0.0 if baseline is None else np.asarray(baseline, np.float32)[..., _JAW])
    return (expression_scores(b, baseline).max(-1) < NEUTRAL_MAX_SCORE) & (jaw < NEUTRAL_MAX_JAW)


def clip_baseline(blendshapes: np.ndarray, ok: np.ndarray | None = None, fraction: float = 0.2) -> np.ndarray:
    """A clip's resting blendshapes: the median of its calmest frames, ``[N,52] -> [52]``.

    "Calmest" = the ``fraction`` of tracked frames with the least total activity in the
    blendshapes the expression rules read. Per-blendshape minima would not do: a person who
    squints at rest shows less squint only while surprised, and the squint would then count
    as expression in every neutral frame.
    """
    b = np.asarray(blendshapes, np.float32)
    if ok is not None:
        b = b[np.asarray(ok, bool)]
    if len(b) == 0:
        return np.zeros(52, np.float32)
    activity = b @ (_CLASS_W.sum(0) > 0).astype(np.float32)
    k = max(1, int(round(fraction * len(b))))
    return np.median(b[np.argsort(activity)[:k]], axis=0).astype(np.float32)
