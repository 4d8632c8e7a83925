"""The mesh warp on real faces: identity, affine exactness, holes, head pose, gaze, the torch path."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from reenact.geometry import TargetGeometry, calibrate_driver, face_mask
from reenact.geometry.frontalize import euler_angles
from reenact.geometry.retarget import LandmarkRetargeter, ease_pose, rotation_from_euler
from reenact.geometry.warp import (INNER_LIPS, NUM_VERTICES, WarpCompositor, backward_map, extend_mesh, hole_mask,
                                   mesh_triangles, remap, remap_torch, tessellation)
from reenact.io.images import load_image

from .conftest import IMAGES

PHOTO = IMAGES / "skimage_astronaut.png"


@pytest.fixture(scope="module")
def photo_face(image_tracker):
    img = load_image(PHOTO)
    return img, image_tracker.track(img).primary


def test_the_mesh_is_mediapipes_tessellation_with_fans_and_rings():
    tri = tessellation()
    assert tri.shape == (852, 3) and tri.max() == 467
    allt = mesh_triangles()
    assert allt.max() == NUM_VERTICES - 1
    # the eyes and the mouth are holes of the tessellation, closed only by the fans
    inner = set(INNER_LIPS.tolist())
    assert not any(set(t) <= inner for t in tri.tolist())


@pytest.mark.parametrize("step", [1, 2, 4])
def test_identical_landmarks_give_the_identity(photo_face, step):
    img, face = photo_face
    h, w = img.shape[:2]
    s, d = extend_mesh(face.landmarks, face.landmarks)
    mx, my = backward_map(s, d, (w - 10, h - 6), (7, 3), step)
    out = remap(img, mx, my)
    assert np.abs(out.astype(int) - img[3:h - 3, 7:w - 3]).max() <= 1


def test_an_affine_motion_reproduces_warp_affine_inside_the_face(photo_face):
    img, face = photo_face
    h, w = img.shape[:2]
    A = cv2.getRotationMatrix2D((250.0, 200.0), 7.0, 1.05)
    A[:, 2] += (3.0, -2.0)
    moved = face.landmarks[:, :2] @ A[:, :2].T + A[:, 2]
    s, d = extend_mesh(face.landmarks, moved)
    out = remap(img, *backward_map(s, d, (w, h), (0, 0), 2))
    ref = cv2.warpAffine(img, A, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = face_mask(moved, (w, h)) > 0.99
    assert inside.sum() > 5000
    assert np.abs(out.astype(int) - ref)[inside].max() <= 1


def test_the_torch_path_matches_cv2_remap(photo_face):
    torch = pytest.importorskip("torch")
    img, face = photo_face
    h, w = img.shape[:2]
    moved = face.landmarks.copy()
    moved[INNER_LIPS[5:15], 1] += 6.0
    s, d = extend_mesh(face.landmarks, moved)
    mx, my = backward_map(s, d, (200, 180), (150, 100), 2)
    a = remap(img, mx, my).astype(np.float32)
    t = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float()
    b = remap_torch(t, mx, my)[0].permute(1, 2, 0).numpy()
    assert np.abs(a - b).max() <= 1.01


def test_the_hole_mask_opens_with_the_mouth_on_real_frames(video_tracks, neutral_and_open):
    neutral, open_ = neutral_and_open
    target = video_tracks[neutral].primary
    calib = calibrate_driver([t.primary for t in video_tracks[:30]])
    rt = LandmarkRetargeter(calib, TargetGeometry.from_face(target))
    closed_mesh = rt(video_tracks[neutral].primary)
    open_mesh = rt(video_tracks[open_].primary)
    size = (480, 480)
    assert hole_mask(target.landmarks, closed_mesh, size).sum() < 1.0
    hole = hole_mask(target.landmarks, open_mesh, size)
    assert hole.sum() > 200, hole.sum()
    # the hole lies inside the moved inner lips
    lips = np.zeros((480, 480), np.uint8)
    cv2.fillPoly(lips, [np.round(open_mesh[INNER_LIPS, :2]).astype(np.int32)], 1)
    lips = cv2.dilate(lips, np.ones((3, 3), np.uint8))
    assert hole[lips == 0].sum() < 0.02 * hole.sum()


def test_the_warp_compositor_fills_the_opened_mouth_dark_and_keeps_the_rest(video_tracks, fixture_frames,
                                                                           neutral_and_open):
    neutral, open_ = neutral_and_open
    target = video_tracks[neutral].primary
    img = fixture_frames[neutral].image
    from reenact.geometry import Aligner

    calib = calibrate_driver([t.primary for t in video_tracks[:30]])
    rt = LandmarkRetargeter(calib, TargetGeometry.from_face(target))
    wc = WarpCompositor(img, target.landmarks, Aligner(128).transform(target.landmarks), 128)
    out = wc.render(wc.frame(rt(video_tracks[open_].primary)))
    x0, y0, x1, y1 = wc.region
    untouched = np.ones(img.shape[:2], bool)
    untouched[y0:y1, x0:x1] = False
    assert np.array_equal(out[untouched], img[untouched])
    hole = wc.frame(rt(video_tracks[open_].primary)).hole
    deep = np.zeros(img.shape[:2], bool)
    deep[y0:y1, x0:x1] = cv2.erode((hole > 0.9).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert deep.sum() > 50
    assert out[deep].mean() < 60, "the opened mouth is not dark inside"
    # the driver's calibrated rest leaves the photo as it is
    rest = LandmarkRetargeter(calibrate_driver([video_tracks[neutral].primary]), TargetGeometry.from_face(target))
    same = wc.render(wc.frame(rest(video_tracks[neutral].primary)))
    assert np.abs(same.astype(int) - img).mean() < 0.5


def test_the_drivers_own_mouth_fills_the_opening_and_nothing_else(video_tracks, fixture_frames, neutral_and_open):
    """The photo (the clip's neutral frame) opened to the open frame's mouth shows that frame's own
    interior through the mouth fan: much closer to the real open frame than the plain dark fill,
    in the full frame and in the model's crop, and the same pixels everywhere outside the hole. A
    driver whose mouth is closed leaves the dark fill as it is."""
    from reenact.geometry import Aligner

    neutral, open_ = neutral_and_open
    target, driver = video_tracks[neutral].primary, video_tracks[open_].primary
    img, truth = fixture_frames[neutral].image, fixture_frames[open_].image
    rt = LandmarkRetargeter(calibrate_driver([target]), TargetGeometry.from_face(target))
    M = Aligner(128).transform(target.landmarks)
    wc = WarpCompositor(img, target.landmarks, M, 128)
    dst = rt(driver)
    dark_wf = wc.frame(dst, crop=True)
    dark = wc.render(dark_wf).copy()
    wf = wc.frame(dst, crop=True, mouth=wc.driver_mouth(truth, driver.landmarks))
    assert wf.mouth is not None and wf.mouth[0] == 1.0
    out = wc.render(wf).copy()
    x0, y0, x1, y1 = wc.region
    hole = np.zeros(img.shape[:2], np.float32)
    hole[y0:y1, x0:x1] = wf.hole
    deep = cv2.erode((hole > 0.9).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert deep.sum() > 50
    err_dark = np.abs(dark[deep].astype(float) - truth[deep]).mean()
    err = np.abs(out[deep].astype(float) - truth[deep]).mean()
    assert err < 0.5 * err_dark, (err, err_dark)
    assert np.array_equal(out[hole == 0], dark[hole == 0])
    # the model's crop gets the same interior
    ch = wf.crop_hole > 0.9
    t_crop = wc.crop_of(truth)
    assert ch.sum() > 10
    assert (np.abs(wf.crop[ch].astype(float) - t_crop[ch]).mean()
            < 0.5 * np.abs(dark_wf.crop[ch].astype(float) - t_crop[ch]).mean())
    # a closed driver mouth has no interior to give
    closed = wc.driver_mouth(img, target.landmarks)
    assert closed.weight(dst) == 0.0
    assert wc.frame(dst, mouth=closed).mouth is None


def _rolled(face, degrees: float):
    """The same tracked face, its landmarks turned in the image plane about the face's centre."""
    c = face.landmarks[:, :2].mean(0)
    A = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), -degrees, 1.0)  # cv2: positive = counter-clockwise
    lm = face.landmarks.copy()
    lm[:, :2] = face.landmarks[:, :2] @ A[:, :2].T + A[:, 2]
    return dataclasses.replace(face, landmarks=lm)


@pytest.mark.parametrize("roll", [-12.0, 10.0])
def test_the_drivers_head_roll_turns_the_target_by_the_same_angle(video_tracks, photo_face, roll):
    _img, tface = photo_face
    driver = video_tracks[5].primary
    calib = calibrate_driver([driver])
    rt = LandmarkRetargeter(calib, TargetGeometry.from_face(tface))
    motion, pose = rt.measure(_rolled(driver, roll))
    assert abs(pose[2] - roll) < 1.0, pose
    out = rt.apply(motion, pose)
    # the angle of the target's eye line before and after
    def angle(p):
        v = p[263, :2] - p[33, :2]
        return np.degrees(np.arctan2(v[1], v[0]))
    turned = angle(out) - angle(tface.landmarks)
    assert abs(turned - roll) < 2.0, (turned, roll)
    # and with --no-pose the head stays where it is
    still = LandmarkRetargeter(calib, TargetGeometry.from_face(tface), pose=False).apply(motion, pose)
    assert abs(angle(still) - angle(tface.landmarks)) < 1.0


def test_euler_angles_round_trip_and_turns_are_eased():
    for ypr in [(10.0, -5.0, 20.0), (-30.0, 15.0, -8.0), (0.0, 0.0, 45.0)]:
        np.testing.assert_allclose(euler_angles(rotation_from_euler(*ypr)), ypr, atol=1e-9)
    eased = ease_pose(np.array([60.0, -60.0, 40.0]))
    assert 20 < eased[0] < 25 and -25 < eased[1] < -20 and eased[2] == 40.0
    assert abs(ease_pose(np.array([5.0, 0.0, 0.0]))[0] - 5.0) < 0.2


def test_gaze_moves_the_iris_within_the_eye_and_can_be_turned_off(video_tracks, photo_face):
    _img, tface = photo_face
    driver = video_tracks[5].primary
    calib = calibrate_driver([driver])
    motion = np.zeros((478, 3))
    motion[468:478, 0] = 0.08  # both irises look to the side (IOD units)
    on = LandmarkRetargeter(calib, TargetGeometry.from_face(tface)).apply(motion)
    off = LandmarkRetargeter(calib, TargetGeometry.from_face(tface), gaze=False).apply(motion)
    base = tface.landmarks
    assert np.linalg.norm(on[468, :2] - base[468, :2]) > 2.0
    assert np.linalg.norm(off[468, :2] - base[468, :2]) < 0.5
    assert np.abs(on[:468] - off[:468]).max() < 1e-6  # nothing else moves


def test_a_generator_that_reads_the_warp_gets_the_warped_crop_and_hole():
    """The export contract's "warp" inputs: the runtime feeds the warped target crop and its hole
    mask to a drive engine that declares them, and pastes what it paints over the warped photo."""
    import torch
    from torch import nn

    from reenact.backends import PyTorchBackend
    from reenact.models.base import EngineSpec, ModelConfig, ReenactModel, TensorSpec
    from reenact.runtime import Reenactor, prepare_target
    from reenact.runtime.scripts import EXPRESSIONS, expression_vector

    class PaintHole(nn.Module):
        def forward(self, warped, hole):
            return warped * (1 - hole) + hole * torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)  # red inside

    class WarpReader(ReenactModel):
        model_id, res, generator_names = "warp-reader", 64, ()

        def engines(self):
            r = self.res
            return [EngineSpec("paint", "drive", lambda: PaintHole().eval(),
                               (TensorSpec("warped", (1, 3, r, r), source="warp"),
                                TensorSpec("hole", (1, 1, r, r), source="warp")),
                               (TensorSpec("img", (1, 3, r, r)),))]

    m = WarpReader(ModelConfig())
    assert m.warp_inputs() == ("warped", "hole")
    img = load_image(PHOTO)
    r = Reenactor(m, prepare_target(img, m.res), PyTorchBackend(m, device="cpu"))
    try:
        opened = expression_vector({**EXPRESSIONS["open"], "jawOpen": 1.0})
        for i in range(30):  # the smoother eases in from the neutral face
            out = r.process(None, i / 30, dblend=opened)
        wf = r.warper.frame(out.mesh, crop=True)
        hole = wf.crop_hole > 0.99
        assert hole.sum() > 5
        crop = out.crop.astype(int)
        assert np.abs(crop[~(wf.crop_hole > 0.01)] - wf.crop.astype(int)[~(wf.crop_hole > 0.01)]).max() <= 1
        assert (crop[hole][:, 0] > 200).all() and (crop[hole][:, 1] < 60).all()  # painted red where it opened
        # the full-resolution output turns red inside the opened mouth too
        mouth = out.mesh[13, :2] + (out.mesh[14, :2] - out.mesh[13, :2]) / 2
        x, y = int(round(mouth[0])), int(round(mouth[1]))
        assert out.image[y, x, 0] > 150 and out.image[y, x, 1] < 100
    finally:
        r.close()


def test_the_warp_paste_adds_a_generators_residual_inside_the_moved_face_only(photo_face):
    """``--paste warp`` with a paper-mode generator: the output is the warped photo plus the
    generator's residual (its crop minus its own neutral rendering, both moved by the warp),
    inside the moved face and nowhere else."""
    from reenact.geometry import Aligner

    img, face = photo_face
    M = Aligner(64).transform(face.landmarks)
    wc = WarpCompositor(img, face.landmarks, M, 64)
    moved = face.landmarks.copy()
    moved[:, 0] += 3.0  # a small shift of the whole face
    wf = wc.frame(moved, crop=True)
    plain = wc.render(wf).copy()
    residual = np.zeros((64, 64, 3), np.float32)
    residual[..., 1] = 40.0  # the generator adds green everywhere in its crop
    out = wc.render(wf, residual).astype(int)
    diff = out - plain.astype(int)
    inside = face_mask(moved, (img.shape[1], img.shape[0])) > 0.95
    assert np.median(diff[inside][:, 1]) >= 35 and np.abs(diff[inside][:, [0, 2]]).max() <= 1
    far = face_mask(moved, (img.shape[1], img.shape[0]), dilate=0.3) < 1e-3
    assert np.abs(diff[far]).max() == 0
