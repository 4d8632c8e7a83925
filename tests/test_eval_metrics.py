"""Evaluation metrics on cases with known answers (no model involved)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from reenact.errors import ReenactError
from reenact.eval import metrics as M
from reenact.eval.identity import SAME_PERSON_THRESHOLD, identity_available
from reenact.eval.report import to_json
from reenact.geometry import Aligner, to_ibug68
from reenact.io.images import load_image
from reenact.tracking import BLENDSHAPE_INDEX

from .conftest import IMAGES

HAS_DLIB, NO_DLIB_REASON = identity_available()
needs_dlib = pytest.mark.skipif(not HAS_DLIB, reason=f"dlib is not installed: {NO_DLIB_REASON}")


@pytest.fixture(scope="module")
def face_crop(fixture_frames, video_tracks):
    """The fixture's first frame aligned to a 128 crop, and the aligner's matrix."""
    aligner = Aligner(128)
    crop = aligner.crop(fixture_frames[0].image, video_tracks[0].primary.landmarks)
    return crop.image, crop.M


# --------------------------------------------------------------------------- pixels


def test_identical_images_score_perfectly(face_crop):
    img = face_crop[0]
    assert M.psnr(img, img) == math.inf
    assert M.ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert M.l1(img, img) == 0.0
    f = img.astype(np.float32) / 255
    assert M.psnr(f, f) == math.inf and M.ssim(f, f) == pytest.approx(1.0) and M.l1(f, f) == 0.0


def test_known_values():
    a = np.full((32, 32, 3), 100, np.uint8)
    b = a + 1  # one level everywhere
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-9)  # 48.13 dB
    assert M.l1(a, b) == pytest.approx(1.0)
    # float images in [0, 1] measure on the same 0-255 scale
    assert M.l1(a / 255.0, b / 255.0) == pytest.approx(1.0)
    assert M.psnr(a / 255.0, b / 255.0) == pytest.approx(M.psnr(a, b))
    # a mask limits the comparison to its pixels
    c = a.copy()
    c[:, 16:] = 200
    mask = np.zeros((32, 32), np.float32)
    mask[:, :16] = 1
    assert M.l1(a, c, mask=mask) == 0.0 and M.psnr(a, c, mask=mask) == math.inf
    with pytest.raises(ValueError):
        M.psnr(a, a[:16])


def test_shifted_crop_scores_worse(fixture_frames, face_crop):
    """The same frame cropped 1 and 4 pixels off: every metric says worse, and worse with the shift."""
    img, Mat = face_crop
    frame = fixture_frames[0].image
    scores = []
    for dx in (1.0, 4.0):
        Ms = Mat.copy()
        Ms[0, 2] += dx
        from reenact.geometry.align import warp_to_crop
        shifted = warp_to_crop(frame, Ms, 128)
        scores.append((M.psnr(shifted, img), M.ssim(shifted, img), M.l1(shifted, img)))
    (p1, s1, l1), (p4, s4, l4) = scores
    assert math.isfinite(p1) and p4 < p1 < 60
    assert s4 < s1 < 1.0
    assert 0 < l1 < l4


@pytest.mark.parametrize("kind", ["noise", "shift", "float", "grey"])
def test_ssim_matches_scikit_image(face_crop, kind):
    img = face_crop[0]
    rng = np.random.default_rng(0)
    if kind == "shift":
        other = np.roll(img, 3, axis=1)
    else:
        other = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    a, b, rng_ = img, other, 255
    if kind == "float":
        a, b, rng_ = img / 255.0, other / 255.0, 1.0
    if kind == "grey":
        a, b = img[..., 1], other[..., 1]
    ref = structural_similarity(a, b, data_range=rng_, channel_axis=None if a.ndim == 2 else -1,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-3)
    value, smap = M.ssim(a, b, return_map=True)
    assert smap.shape == a.shape[:2] and value == M.ssim(a, b)


# --------------------------------------------------------------------------- expression


@pytest.fixture(scope="module")
def driver_blend(video_tracks):
    return np.stack([t.primary.blendshapes for t in video_tracks]).astype(np.float64)


def test_frozen_output_has_zero_correlation(driver_blend, fixture_frames):
    t = np.array([f.t for f in fixture_frames])
    base = M.first_second_baseline(driver_blend, t)
    frozen = np.repeat(driver_blend[:1], len(driver_blend), axis=0)
    res = M.blendshape_correlation(frozen, driver_blend, (M.first_second_baseline(frozen, t), base))
    assert res.mean == 0.0 and res.pooled == 0.0
    assert all(v == 0.0 for v in res.per_blendshape.values())
    assert "jawOpen" in res.names  # the fixture opens its mouth wide
    assert res.mae > 0.05
    same = M.blendshape_correlation(driver_blend, driver_blend, (base, base))
    assert same.mean == pytest.approx(1.0) and same.pooled == pytest.approx(1.0) and same.mae == 0.0


def test_correlation_scores_only_expressive_blendshapes_that_vary():
    rng = np.random.default_rng(1)
    n = 90
    drv = np.full((n, 52), 0.2)
    wave = 0.5 + 0.4 * np.sin(np.linspace(0, 6, n))
    drv[:, BLENDSHAPE_INDEX["jawOpen"]] = wave
    drv[:, BLENDSHAPE_INDEX["eyeLookInLeft"]] = wave                       # gaze: never scored
    drv[:, BLENDSHAPE_INDEX["mouthSmileLeft"]] += rng.normal(0, 0.005, n)  # tracker noise: not scored
    out = drv.copy()
    out[:, BLENDSHAPE_INDEX["jawOpen"]] = 0.1 + 0.5 * wave                  # follows, weaker: r = 1
    out[:, BLENDSHAPE_INDEX["eyeLookInLeft"]] = 0.3
    res = M.blendshape_correlation(out, drv)
    assert res.names == ("jawOpen",) and res.mean == pytest.approx(1.0)
    assert "eyeLookInLeft" not in M.EXPRESSIVE_BLENDSHAPES and "_neutral" not in M.EXPRESSIVE_BLENDSHAPES
    # anti-correlated output
    out[:, BLENDSHAPE_INDEX["jawOpen"]] = 1 - wave
    assert M.blendshape_correlation(out, drv).mean == pytest.approx(-1.0)


def test_correlation_is_nan_safe():
    drv = np.zeros((40, 52))
    drv[:, BLENDSHAPE_INDEX["jawOpen"]] = np.linspace(0, 1, 40)
    out = drv.copy()
    out[5:10] = np.nan  # output face lost for a few frames: those frames are left out
    res = M.blendshape_correlation(out, drv)
    assert res.frames == 35 and res.mean == pytest.approx(1.0)
    # a driver that never moves: nothing to score (NaN, not an error)
    still = M.blendshape_correlation(np.zeros((40, 52)), np.zeros((40, 52)))
    assert math.isnan(still.mean) and still.names == ()
    assert math.isnan(M.blendshape_correlation(np.full((40, 52), np.nan), drv).mean)


def test_first_second_baseline():
    t = np.arange(60) / 30.0
    b = np.zeros((60, 52))
    b[30:] = 0.8
    b[3] = np.nan  # untracked
    base = M.first_second_baseline(b, t)
    assert np.allclose(base, 0.0)
    assert np.all(M.first_second_baseline(np.full((5, 52), np.nan), t[:5]) == 0)


def test_landmark_nme(video_tracks):
    ref = to_ibug68(video_tracks[0].primary.landmarks[:, :2]).astype(np.float64)
    assert M.landmark_nme(ref, ref) == 0.0
    iod = float(M.inter_ocular(ref))
    assert 50 < iod < 300  # pixels: the outer eye corners of a 480x480 portrait
    moved = ref + np.array([0.1 * iod, 0.0])
    assert M.landmark_nme(moved, ref) == pytest.approx(0.1)
    many = M.landmark_nme(np.stack([ref, moved, np.full_like(ref, np.nan)]), np.stack([ref, ref, ref]))
    assert many[0] == 0 and many[1] == pytest.approx(0.1) and math.isnan(many[2])


# --------------------------------------------------------------------------- time


def test_still_frames_follow_landmark_speed(video_tracks):
    ref = to_ibug68(video_tracks[0].primary.landmarks[:, :2]).astype(np.float64)
    iod = float(M.inter_ocular(ref))
    n = 30
    t = np.arange(n) / 30.0
    lm = np.repeat(ref[None], n, axis=0)
    lm[15:] += (np.arange(15)[:, None, None] + 1) * (0.02 * iod)  # 0.6 IOD/s from frame 15
    lm[25] = np.nan
    still = M.still_frames(lm, t)
    assert not still[0] and still[1:15].all() and not still[15:].any()


def test_temporal_stability_still_versus_flicker():
    rng = np.random.default_rng(2)
    n, h, w = 20, 32, 32
    base = rng.integers(40, 200, (h, w, 3)).astype(np.uint8)
    steady = np.repeat(base[None], n, axis=0)
    flicker = steady.copy()
    flicker[1::2] = np.clip(base.astype(int) + 10, 0, 255).astype(np.uint8)  # +-10 levels every frame
    mask = np.zeros((h, w), np.float32)
    mask[8:24, 8:24] = 1
    still = np.ones(n, bool)
    still[0] = False
    assert M.temporal_stability(steady, mask, still) == 0.0
    assert M.temporal_stability(flicker, mask, still) == pytest.approx(10.0)
    # flicker only outside the face does not count
    outside = steady.copy()
    outside[1::2, :4] = 0
    assert M.temporal_stability(outside, mask, still) == 0.0
    # only the steps where the driver holds still count
    moving = steady.copy()
    moving[10:] = np.clip(base.astype(int) + 30, 0, 255).astype(np.uint8)
    still_but_10 = still.copy()
    still_but_10[10] = False
    assert M.temporal_stability(moving, mask, still_but_10) == 0.0
    assert M.temporal_stability(moving, mask, still) > 0.0
    assert math.isnan(M.temporal_stability(steady, mask, np.zeros(n, bool)))
    # float frames in [0, 1] are measured on the same 0-255 scale
    assert M.temporal_stability(flicker / 255.0, mask, still) == pytest.approx(10.0)


# --------------------------------------------------------------------------- identity


@pytest.fixture(scope="module")
def encoder():
    from reenact.eval.identity import IdentityEncoder

    return IdentityEncoder()


def _descriptor(encoder, tracker, image):
    face = tracker.track(image).primary
    assert face is not None
    return encoder.descriptor(image, face.landmarks)


@needs_dlib
def test_same_image_has_distance_zero(encoder, image_tracker):
    img = load_image(IMAGES / "sadtalker_sad.png")
    a = _descriptor(encoder, image_tracker, img)
    b = _descriptor(encoder, image_tracker, img.copy())
    assert a.shape == (128,) and encoder.distance(a, b) == 0.0
    # dlib's own detector and 5-point predictor agree with our MediaPipe points
    assert encoder.distance(a, encoder.descriptor(img)) < 0.25


@needs_dlib
def test_identity_separates_people(encoder, image_tracker, fixture_frames):
    man_a = _descriptor(encoder, image_tracker, fixture_frames[0].image)
    man_b = _descriptor(encoder, image_tracker, fixture_frames[150].image)  # same man, mouth wide open
    woman = _descriptor(encoder, image_tracker, load_image(IMAGES / "sadtalker_sad.png"))
    astronaut = _descriptor(encoder, image_tracker, load_image(IMAGES / "skimage_astronaut.png"))
    assert encoder.distance(man_a, man_b) < SAME_PERSON_THRESHOLD
    assert encoder.distance(man_a, woman) > SAME_PERSON_THRESHOLD
    assert encoder.distance(woman, astronaut) > SAME_PERSON_THRESHOLD


def test_missing_identity_packages_name_the_extra(monkeypatch):
    import importlib.util

    from reenact.eval import identity

    real = importlib.util.find_spec
    monkeypatch.setattr(identity.importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    ok, why = identity.identity_available()
    assert not ok and 'pip install "reenact[eval]"' in why
    with pytest.raises(ReenactError, match=r"reenact\[eval\]"):
        identity.IdentityEncoder()


# --------------------------------------------------------------------------- report


def test_report_json_values():
    out = to_json({"a": np.float32(0.5), "b": float("nan"), "c": float("inf"), "d": np.arange(3),
                   "e": [np.bool_(True), None], "f": 1 / 3})
    assert out == {"a": 0.5, "b": None, "c": "inf", "d": [0, 1, 2], "e": [True, None], "f": 0.333333}
