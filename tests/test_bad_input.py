"""Bad input: each case gives a clear error or an empty result, never a crash or a hang."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reenact.cli import main
from reenact.errors import ImageError, InputFileError, VideoError
from reenact.io.images import as_rgb, load_image
from reenact.io.video import VideoReader

from .conftest import FIXTURE_VIDEO, IMAGES


def test_image_without_a_face_gives_an_empty_result(image_tracker):
    import skimage.data

    assert not image_tracker.track(skimage.data.coffee()).ok
    assert not image_tracker.track(np.full((480, 640, 3), 127, np.uint8)).ok


def test_zero_byte_files(tmp_path):
    for name in ("empty.png", "empty.mp4"):
        (tmp_path / name).touch()
    with pytest.raises(InputFileError, match="empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(InputFileError, match="empty"):
        VideoReader(tmp_path / "empty.mp4")


def test_not_an_image(tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("hello")
    with pytest.raises(ImageError, match="fake.png"):
        load_image(p)
    with pytest.raises(InputFileError, match="not found"):
        load_image(tmp_path / "missing.jpg")


@pytest.mark.timeout(120)
def test_truncated_video_via_cli(tmp_path, capsys):
    data = FIXTURE_VIDEO.read_bytes()
    # the fixture keeps its index at the end: cut it and nothing decodes -> a clear error
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["track", str(cut), "--out", str(tmp_path / "cut.npz")]) == 2
    assert "cut.mp4" in capsys.readouterr().err
    assert not (tmp_path / "cut.npz").exists()
    # a file with its index first, cut: the frames that decode are tracked, with a warning
    from reenact.io.video import VideoWriter, read_all

    src = tmp_path / "faststart.mp4"
    with VideoWriter(src, fps=30) as w:
        for f in read_all(FIXTURE_VIDEO, max_frames=40):
            w.write(f.image, f.t)
    part = tmp_path / "part.mp4"
    b = src.read_bytes()
    part.write_bytes(b[: int(len(b) * 0.7)])
    assert main(["track", str(part), "--out", str(tmp_path / "part.npz")]) == 0
    from reenact.tracking.tracks import TrackSequence

    seq = TrackSequence.load(tmp_path / "part.npz")
    assert 0 < len(seq) < 40 and seq.ok.all()


def test_grayscale_and_rgba_images(tmp_path, image_tracker):
    src = Image.open(IMAGES / "sadtalker_sad.png")
    grey16 = Image.fromarray(np.asarray(src.convert("L")).astype(np.uint16) * 257)  # true 16-bit range
    for mode in ("L", "RGBA", "LA", "P", "I;16", "CMYK"):
        p = tmp_path / f"face_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
        (grey16 if mode == "I;16" else src.convert(mode)).save(p)
        img = load_image(p)
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8, mode
        assert len(image_tracker.track(img).faces) == 1, mode
    # arrays: greyscale and RGBA are converted; float data and odd channel counts are named
    grey = np.asarray(src.convert("L"))
    assert image_tracker.track(grey).ok and image_tracker.track(np.dstack([np.asarray(src.convert("RGB")),
                                                                           np.full(grey.shape, 255, np.uint8)])).ok
    with pytest.raises(ImageError, match="uint8"):
        as_rgb(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ImageError, match="shape"):
        as_rgb(np.zeros((64, 64, 2), np.uint8))


def test_tiny_images_give_an_empty_result(image_tracker, tmp_path):
    for shape in ((1, 1, 3), (1, 500, 3), (15, 15, 3)):
        assert not image_tracker.track(np.zeros(shape, np.uint8)).ok
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    assert main(["track", str(tmp_path / "one.png"), "--out", str(tmp_path / "one.npz")]) == 0


def test_huge_image_is_refused_before_decoding(tmp_path, capsys):
    p = tmp_path / "huge.png"
    Image.new("L", (12000, 10000)).save(p)  # 120 MP, compresses to ~100 KB
    with pytest.raises(ImageError, match="too large"):
        load_image(p)
    assert main(["track", str(p), "--out", str(tmp_path / "h.npz")]) == 2
    assert "too large" in capsys.readouterr().err


def test_missing_input_and_bad_options(tmp_path, capsys):
    assert main(["track", str(tmp_path / "nope.mp4")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["track", str(FIXTURE_VIDEO), "--max-faces", "0"])
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("text")
    assert main(["track", str(not_video)]) == 2
    assert "notes.mp4" in capsys.readouterr().err
    with pytest.raises(VideoError):
        VideoReader(not_video)
