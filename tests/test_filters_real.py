"""One Euro filter on real tracks of the fixture video (IMAGE-mode tracking: MediaPipe's own
smoothing is off, so this is the raw jitter a webcam driver has)."""
from __future__ import annotations

import numpy as np

from reenact.filters import BLENDSHAPES, LANDMARKS, OneEuroFilter
from reenact.geometry import eye_centres


def _still_runs(disp: np.ndarray, thresh: float, min_len: int = 6) -> list[slice]:
    runs, start = [], None
    for i, still in enumerate(np.append(disp < thresh, False)):
        if still and start is None:
            start = i
        elif not still and start is not None:
            if i - start >= min_len:
                runs.append(slice(start + 1, i + 1))  # disp[i] is the move from frame i to i+1
            start = None
    return runs


def _jitter(x: np.ndarray, runs: list[slice]) -> float:
    """Mean |second difference| inside still runs: frame-to-frame shake, not slow drift."""
    return float(np.mean([np.abs(np.diff(x[r], n=2, axis=0)).mean() for r in runs]))


def test_jitter_of_still_segments_drops(image_tracks):
    faces = [t.primary for t in image_tracks]
    t = np.array([tr.t for tr in image_tracks]) + np.arange(len(faces)) / 30.0  # image mode carries no time
    L = np.array([f.landmarks[:, :2] for f in faces], np.float64)
    r, l = eye_centres(L)
    # IOD units about the eye midpoint, as the runtime filters them
    L = (L - ((r + l) / 2)[:, None]) / np.linalg.norm(r - l, axis=1)[:, None, None]
    disp = np.abs(np.diff(L, axis=0)).mean((1, 2))
    runs = _still_runs(disp, np.percentile(disp, 50), min_len=4)
    assert sum(r.stop - r.start for r in runs) >= 30, "the fixture should have still moments"

    f = OneEuroFilter(LANDMARKS)
    Lf = np.stack([f(x, ti) for x, ti in zip(L, t)])
    factor = _jitter(L, runs) / _jitter(Lf, runs)
    # measured 2.4x on landmarks (IOD units) at 30 fps
    assert factor > 3.0, factor  # measured 6.0x (second differences, IOD units, 30 fps)

    B = np.array([fc.blendshapes for fc in faces], np.float64)
    fb = OneEuroFilter(BLENDSHAPES)
    Bf = np.stack([fb(x, ti) for x, ti in zip(B, t)])
    assert _jitter(B, runs) / _jitter(Bf, runs) > 1.5
    # ...while the expression itself still comes through: the jaw-open peak survives
    jaw = 25
    assert Bf[:, jaw].max() > 0.8 * B[:, jaw].max()


def test_step_on_a_real_face_settles_within_250ms(image_tracks):
    """A 0.3 IOD step (a mouth opening at once) added to the real, jittery track of the clip's
    first two seconds: the filtered lip is within 5% of the step after 0.2 s (asserted < 0.25 s;
    the tolerance is wider than the synthetic test's 2% because the real jitter passes the
    filter differently once the step has raised its cutoff)."""
    base = np.array([t.primary.landmarks[:, :2] for t in image_tracks[:60]], np.float64)
    r, l = eye_centres(base)
    base = base / np.linalg.norm(r - l, axis=1)[:, None, None]
    times = np.arange(60) / 30.0
    step = np.zeros_like(base)
    step[30:, 14, 1] = 0.3  # MP 14: lower inner lip moves down
    f = OneEuroFilter(LANDMARKS)
    y = np.stack([f(x, t) for x, t in zip(base + step, times)])
    g = OneEuroFilter(LANDMARKS)
    ref = np.stack([g(x, t) for x, t in zip(base, times)])  # same jitter, no step
    err = np.abs((y - ref)[:, 14, 1] - 0.3)
    settled = np.nonzero(err[30:] > 0.05 * 0.3)[0]
    settle_s = (settled.max() + 1) / 30.0 if len(settled) else 0.0
    assert 0.1 < settle_s < 0.25, settle_s
