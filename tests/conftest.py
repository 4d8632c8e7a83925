"""Shared fixtures: real data from ../shared (never copied into the repository)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("REENACT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = SHARED / "data"
FACE_MODEL = SHARED / "models" / "face_landmarker.task"
FIXTURE_VIDEO = DATA / "videos" / "fixtures" / "liveportrait_driving_d18.mp4"
IMAGES = DATA / "images"

if not FACE_MODEL.is_file():
    raise pytest.UsageError(f"test data not found at {SHARED}: set REENACT_SHARED to the shared folder")

# Tests use the shared copy of the MediaPipe model (no network needed) and a private cache.
os.environ["REENACT_FACE_LANDMARKER"] = str(FACE_MODEL)


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA; none is available here")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REENACT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def fixture_frames():
    """The fixture video's frames (216 x 480x480 RGB, 30 fps)."""
    from reenact.io.video import read_all

    return read_all(FIXTURE_VIDEO)


@pytest.fixture(scope="session")
def video_tracks(fixture_frames):
    """VIDEO-mode tracking of every fixture frame: list[FrameTracking]."""
    from reenact.tracking import FaceTracker

    with FaceTracker(mode="video", max_faces=1) as tr:
        return [tr.track(f.image, f.t) for f in fixture_frames]


@pytest.fixture(scope="session")
def image_tracks(fixture_frames):
    """IMAGE-mode tracking (no MediaPipe smoothing: the raw jitter) of every fixture frame."""
    from reenact.tracking import FaceTracker

    with FaceTracker(mode="image", max_faces=1) as tr:
        return [tr.track(f.image) for f in fixture_frames]


@pytest.fixture(scope="session")
def image_tracker():
    from reenact.tracking import FaceTracker

    with FaceTracker(mode="image", max_faces=8) as tr:
        yield tr


@pytest.fixture(scope="session")
def neutral_and_open(video_tracks):
    """(neutral frame index, mouth-wide-open frame index) chosen by the mesh's inner-lip gap."""
    from reenact.geometry import lip_gap_ratio

    gaps = np.array([lip_gap_ratio(t.primary.landmarks) for t in video_tracks])
    return int(np.argmin(gaps[:30])), int(np.argmax(gaps))
