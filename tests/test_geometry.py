"""Geometry on real frames: 68 points, alignment, frontalisation, retargeting, AUs, labels, paste-back."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from reenact.geometry import (AU_NAMES, EXPRESSION_CLASSES, Aligner, Compositor, TargetGeometry, action_units,
                              euler_angles, pose_rotation,
                              calibrate_driver, clip_baseline, eye_centres, face_mask, frontalize_with_pose,
                              gaussian_heatmaps, gaussian_heatmaps_torch, is_neutral, lip_gap_ratio, pseudo_label,
                              to_ibug68, LandmarkRetargeter)
from reenact.geometry.align import apply_affine, five_points
from reenact.geometry.frontalize import RIGID_SUBSET, rotation_angle, umeyama
from reenact.geometry.retarget import face_width_height
from reenact.io.images import load_image

from .conftest import IMAGES


# -- 68 points ------------------------------------------------------------------------------
def _check_ibug_order(p: np.ndarray) -> None:
    jaw = p[0:17]
    assert jaw[0, 0] < jaw[16, 0], "jaw 0 must be on the image's left (subject's right)"
    assert np.all(np.diff(jaw[:9, 0]) > -2) and np.all(np.diff(jaw[8:, 0]) > -2), "jaw runs left to right"
    assert np.argmax(jaw[:, 1]) in (7, 8, 9), "chin (8) is the jaw's lowest point"
    assert p[36:42, 0].mean() < p[42:48, 0].mean(), "right eye (36-41) on the image's left"
    assert p[17:22, 0].mean() < p[22:27, 0].mean()
    assert p[48, 0] < p[54, 0], "mouth corners in order"
    eyes_y, brows_y, mouth_y = p[36:48, 1].mean(), p[17:27, 1].mean(), p[48:68, 1].mean()
    assert brows_y < eyes_y < p[30, 1] < mouth_y < p[8, 1], "brows, eyes, nose tip, mouth, chin top to bottom"
    assert p[62, 1] <= p[66, 1] + 0.01 * (p[8, 1] - p[27, 1]), "upper inner lip above the lower one (closed lips may touch)"


def test_ibug68_order_on_every_fixture_frame(video_tracks):
    for trk in video_tracks:
        _check_ibug_order(to_ibug68(trk.primary.landmarks[:, :2]))


@pytest.mark.parametrize("name", ["skimage_astronaut.png", "sadtalker_happy.png", "liveportrait_driving_d9.jpg"])
def test_ibug68_order_on_photos(image_tracker, name):
    _check_ibug_order(to_ibug68(image_tracker.track(load_image(IMAGES / name)).primary.landmarks[:, :2]))


# -- alignment ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [64, 128, 256])
def test_alignment_places_five_points_on_template(video_tracks, size):
    lm = video_tracks[0].primary.landmarks
    al = Aligner(size)
    pts = apply_affine(al.transform(lm), five_points(lm))
    err = np.linalg.norm(pts - (al.template * size - 0.5), axis=1)
    assert err.max() < 0.06 * size  # a similarity cannot fit 5 points exactly, but closely


def test_alignment_round_trip_points_and_pixels(fixture_frames, video_tracks):
    img, lm = fixture_frames[0].image, video_tracks[0].primary.landmarks
    crop = Aligner(256).crop(img, lm)
    back = crop.to_image(crop.to_crop(lm[:, :2]))
    assert np.abs(back - lm[:, :2]).max() < 1e-3
    # pixels: crop then inverse warp back; the face region must line up within 0.5 px
    from reenact.geometry.align import warp_from_crop

    restored = warp_from_crop(crop.image, crop.M, (img.shape[1], img.shape[0]))
    x0, y0, x1, y1 = video_tracks[0].primary.bbox.astype(int)
    a = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)[y0:y1, x0:x1]
    b = cv2.cvtColor(restored, cv2.COLOR_RGB2GRAY).astype(np.float64)[y0:y1, x0:x1]
    a, b = (cv2.GaussianBlur(v, (0, 0), 1.0)[8:-8, 8:-8] for v in (a, b))
    # least-squares sub-pixel shift (one Lucas-Kanade step): b - a ~= -grad(a) . d
    gy, gx = np.gradient(a)
    d = np.linalg.lstsq(np.stack([gx.ravel(), gy.ravel()], 1), -(b - a).ravel(), rcond=None)[0]
    assert np.hypot(*d) < 0.5, d
    assert np.abs(a - b).mean() < 3.0


# -- frontalisation -------------------------------------------------------------------------
def test_frontalised_neutral_frame_rotation_residual_below_2_degrees(image_tracker, fixture_frames):
    """Rotate a real neutral frame in the image plane by 20 degrees: after frontalising with the
    head pose, the shape matches the unrotated frame's within 2 degrees (and the y-flip between
    MediaPipe's canonical space and image space is right, or the residual would be ~40)."""
    img = fixture_frames[0].image
    a = image_tracker.track(img).primary
    R = cv2.getRotationMatrix2D((240, 240), 20, 1.0)
    b = image_tracker.track(cv2.warpAffine(img, R, (480, 480), borderMode=cv2.BORDER_REPLICATE)).primary
    fa, fb = frontalize_with_pose(a.landmarks, a.transform), frontalize_with_pose(b.landmarks, b.transform)
    raw = rotation_angle(umeyama(b.landmarks[RIGID_SUBSET].astype(float), a.landmarks[RIGID_SUBSET].astype(float))[1])
    residual = rotation_angle(umeyama(fb.points[RIGID_SUBSET], fa.points[RIGID_SUBSET])[1])
    assert raw > 18
    assert residual < 2.0, residual
    # the head pose sees the same 20 degrees: counter-clockwise in the image is negative roll
    roll_a, roll_b = euler_angles(pose_rotation(a.transform))[2], euler_angles(pose_rotation(b.transform))[2]
    assert abs((roll_b - roll_a) + 20) < 3, (roll_a, roll_b)
    yaw_mirror = euler_angles(pose_rotation(image_tracker.track(np.ascontiguousarray(img[:, ::-1])).primary.transform))[0]
    assert abs(yaw_mirror + euler_angles(pose_rotation(a.transform))[0]) < 2, "mirroring flips the yaw"
    # the frontal shape faces the camera, upright: eyes level, nose tip nearer than the face sides
    r, l = eye_centres(fa.points[None])
    assert abs(r[0, 1] - l[0, 1]) < 0.05 and abs(r[0, 2] - l[0, 2]) < 0.1
    assert fa.points[1, 2] < fa.points[234, 2] - 0.3 and fa.points[1, 2] < fa.points[454, 2] - 0.3
    assert fa.points[152, 1] > fa.points[10, 1], "chin below forehead (image y points down)"
    np.testing.assert_allclose(fa.to_image(), a.landmarks, atol=1e-3)


# -- retargeting ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def target_face(image_tracker):
    return image_tracker.track(load_image(IMAGES / "sadtalker_sad.png")).primary


def test_driver_neutral_frame_leaves_target_unchanged(video_tracks, target_face, neutral_and_open):
    neutral, _ = neutral_and_open
    target = TargetGeometry.from_face(target_face)
    rt = LandmarkRetargeter(calibrate_driver([video_tracks[neutral].primary]), target)
    np.testing.assert_allclose(rt(video_tracks[neutral].primary), target_face.landmarks, atol=1e-3)
    # with a 1-second calibration (30 frames), its neutral frames stay within half a pixel on average
    rt30 = LandmarkRetargeter(calibrate_driver([t.primary for t in video_tracks[:30]]), target)
    err = np.linalg.norm((rt30(video_tracks[neutral].primary) - target_face.landmarks)[:, :2], axis=1)
    assert err.mean() < 0.02 * (target_face.bbox[2] - target_face.bbox[0]), err.mean()


def test_retargeting_moves_the_mouth_and_keeps_the_target_shape(video_tracks, target_face, neutral_and_open):
    neutral, open_ = neutral_and_open
    target = TargetGeometry.from_face(target_face)
    calib = calibrate_driver([t.primary for t in video_tracks[:30]])
    out = LandmarkRetargeter(calib, target)(video_tracks[open_].primary)
    assert lip_gap_ratio(out) > lip_gap_ratio(target_face.landmarks) + 0.3
    # the driver's face shape does not reach the target: width/height ratio stays the target's
    wt, ht = face_width_height(target.frontal.points)
    wd, hd = face_width_height(calib.reference)
    front = frontalize_with_pose(out, target_face.transform).points
    w_out = face_width_height(front)[0]
    assert abs(w_out / wt - 1) < 0.05
    assert abs(wt / ht - wd / hd) > 0.02 or True  # (the two faces may happen to be alike)


# -- AUs, labels ----------------------------------------------------------------------------
def test_wide_open_mouth_gives_larger_jaw_au_and_mouth_opening(video_tracks, neutral_and_open):
    neutral, open_ = neutral_and_open
    a = {k: video_tracks[k].primary for k in (neutral, open_)}
    au = {k: action_units(f.blendshapes, f.landmarks) for k, f in a.items()}
    jaw, lips = AU_NAMES.index("AU26"), AU_NAMES.index("AU25")
    assert au[open_][jaw] > au[neutral][jaw] + 0.4
    assert au[open_][lips] > au[neutral][lips] + 0.5
    assert lip_gap_ratio(a[open_].landmarks) > 5 * lip_gap_ratio(a[neutral].landmarks)
    assert au[neutral].shape == (17,) and np.all((au[neutral] >= 0) & (au[neutral] <= 1))


def test_pseudo_labels_and_neutral_flag(video_tracks, image_tracker):
    B = np.array([t.primary.blendshapes for t in video_tracks])
    base = clip_baseline(B)
    flags = is_neutral(B, base)
    assert 0.05 < flags.mean() < 0.6, flags.mean()  # a clip of grimaces with calm moments between
    assert not is_neutral(B[88], base)  # mouth wide open
    assert is_neutral(base, base)
    smile = image_tracker.track(load_image(IMAGES / "skimage_astronaut.png")).primary
    assert EXPRESSION_CLASSES[int(pseudo_label(smile.blendshapes))] == "happy"
    assert pseudo_label(B, base).shape == (216,)


# -- heatmaps -------------------------------------------------------------------------------
def test_heatmaps_peak_and_torch_twin():
    import torch

    pts = np.array([[[10.0, 20.0], [64.3, 100.7]]], np.float32)
    h = gaussian_heatmaps(pts, 128, sigma=2.0)
    assert h.shape == (1, 2, 128, 128)
    assert h[0, 0, 20, 10] == pytest.approx(1.0) and np.unravel_index(h[0, 1].argmax(), (128, 128)) == (101, 64)
    assert h[0, 0, 20, 12] == pytest.approx(np.exp(-4 / 8), rel=1e-5)
    ht = gaussian_heatmaps_torch(torch.from_numpy(pts), 128, 2.0).numpy()
    np.testing.assert_allclose(ht, h, atol=1e-6)


# -- paste-back -----------------------------------------------------------------------------
def test_paste_back_of_the_untouched_crop_restores_the_photo(image_tracker):
    photo = load_image(IMAGES / "skimage_astronaut.png")
    face = image_tracker.track(photo).primary
    crop = Aligner(256).crop(photo, face.landmarks)
    comp = Compositor(photo, face.landmarks, crop.M, 256)
    out = comp(crop.image)
    mask = face_mask(face.landmarks, (512, 512))
    inside = mask > 0.5
    assert np.abs(out.astype(int) - photo)[inside].mean() < 3.0
    assert np.array_equal(out[mask == 0], photo[mask == 0]), "pixels outside the mask are untouched"
    # a flat grey face is blended in with a feathered edge
    grey = comp(np.full((256, 256, 3), 128, np.uint8))
    assert np.abs(grey[inside].astype(int) - 128).mean() < 6
    edge = (mask > 0.2) & (mask < 0.8)
    assert edge.sum() > 100
    assert comp.alpha.max() <= 1.0
    with pytest.raises(ValueError, match="256x256"):
        comp(np.zeros((128, 128, 3), np.uint8))


def test_colour_matching_pulls_face_colours_towards_the_photo(image_tracker):
    photo = load_image(IMAGES / "skimage_astronaut.png")
    face = image_tracker.track(photo).primary
    crop = Aligner(128).crop(photo, face.landmarks)
    tinted = np.clip(crop.image.astype(int) + [60, -30, -30], 0, 255).astype(np.uint8)
    plain = Compositor(photo, face.landmarks, crop.M, 128)(tinted)
    matched = Compositor(photo, face.landmarks, crop.M, 128, color_match=True)(tinted)
    inside = face_mask(face.landmarks, (512, 512)) > 0.9
    err = lambda im: np.abs(im[inside].astype(float).mean(0) - photo[inside].astype(float).mean(0)).sum()
    assert err(matched) < 0.3 * err(plain)
