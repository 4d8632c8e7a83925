"""Tests for reenact.io.video: PyAV reading/writing on the real fixture clip."""
from __future__ import annotations

import dataclasses
import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from reenact.errors import ImageError, InputFileError, VideoError
from reenact.io.video import (
    Frame,
    VideoReader,
    VideoWriter,
    is_image_path,
    is_video_path,
    list_images,
    read_all,
)

SHARED = Path(os.environ.get("REENACT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIXTURE = SHARED / "data" / "videos" / "fixtures" / "liveportrait_driving_d18.mp4"
FIXTURE_FRAMES = 216


@pytest.fixture(scope="module")
def fixture_video() -> Path:
    if not FIXTURE.is_file():
        pytest.skip(f"fixture video not found at {FIXTURE} (set REENACT_SHARED)")
    return FIXTURE


@pytest.fixture(scope="module")
def clip(fixture_video: Path) -> list[Frame]:
    """First 30 frames of the fixture (480x480 RGB)."""
    return read_all(fixture_video, max_frames=30)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def _gradient(h: int, w: int) -> np.ndarray:
    """Smooth uint8 RGB test image (compresses well, so round-trip error stays small)."""
    y, x = np.mgrid[0:h, 0:w]
    channels = [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // (h + w)]
    return np.stack(channels, -1).astype(np.uint8)


def _make_audio_source(path: Path, seconds: float = 2.0, codec: str = "aac") -> None:
    """Write a small file with a 440 Hz sine audio track (and 64x64 video when MP4)."""
    rate = 44100 if codec == "aac" else 22050
    with av.open(str(path), "w") as out:
        video = None
        if path.suffix == ".mp4":
            video = out.add_stream("libx264", rate=10)
            video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream(codec, rate=rate)
        audio.layout = "mono"
        samples = np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
        fmt, data = ("fltp", samples.astype(np.float32)) if codec == "aac" \
            else ("s16", (samples * 12000).astype(np.int16))
        for i in range(0, len(data), 1024):
            frame = av.AudioFrame.from_ndarray(data[None, i:i + 1024], format=fmt, layout="mono")
            frame.sample_rate, frame.pts = rate, i
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
        if video is not None:
            for i in range(int(seconds * 10)):
                frame = av.VideoFrame.from_ndarray(_gradient(64, 64), format="rgb24")
                frame.pts = i
                out.mux(video.encode(frame))
            out.mux(video.encode(None))


def _streams(path: Path) -> dict[str, tuple[str, float]]:
    """{type: (codec name, duration s)} of a media file."""
    with av.open(str(path)) as container:
        return {s.type: (s.codec_context.name, float(s.duration * s.time_base))
                for s in container.streams}


# --------------------------------------------------------------------------- reading


def test_reads_fixture_frames_and_timestamps(fixture_video: Path) -> None:
    times, sizes = [], set()
    with VideoReader(fixture_video) as reader:
        assert reader.fps == pytest.approx(30.0)
        assert reader.size == (480, 480)
        assert reader.num_frames == FIXTURE_FRAMES
        assert reader.duration == pytest.approx(7.2, abs=0.05)
        assert reader.has_audio
        for i, frame in enumerate(reader):
            assert frame.index == i
            assert frame.image.dtype == np.uint8 and frame.image.flags.c_contiguous
            sizes.add(frame.image.shape)
            times.append(frame.t)
        assert not reader.truncated
    assert len(times) == FIXTURE_FRAMES
    assert sizes == {(480, 480, 3)}
    assert times[0] == 0.0
    steps = np.diff(times)
    assert np.all(steps > 0)
    np.testing.assert_allclose(steps, 1 / 30, atol=1e-3)


def test_read_all_max_frames_and_frame_is_frozen(clip: list[Frame]) -> None:
    assert [f.index for f in clip] == list(range(30))
    with pytest.raises(dataclasses.FrozenInstanceError):
        clip[0].t = 1.0  # type: ignore[misc]


def test_reader_iterates_again_from_start(fixture_video: Path) -> None:
    with VideoReader(fixture_video) as reader:
        first = next(iter(reader))
        again = next(iter(reader))
    assert first.index == again.index == 0
    np.testing.assert_array_equal(first.image, again.image)
    with pytest.raises(VideoError, match="closed"):
        iter(reader)


def test_closing_mid_iteration_stops_cleanly(fixture_video: Path) -> None:
    reader = VideoReader(fixture_video)
    frames = iter(reader)
    next(frames)
    reader.close()
    with pytest.raises(VideoError, match="closed or restarted"):
        next(frames)  # must not touch the closed PyAV container (that would crash)


def test_reader_applies_display_rotation(tmp_path: Path) -> None:
    path = tmp_path / "rotated.mp4"
    image = np.zeros((32, 64, 3), np.uint8)
    image[:16, :16] = 255  # white block at top-left
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # shown turned 90 degrees counter-clockwise
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with VideoReader(path) as reader:
        assert reader.size == (32, 64)
        frames = list(reader)
    shown = frames[0].image
    assert shown.shape == (64, 32, 3)
    assert shown[-8:, :8].mean() > 200 and shown[:8, :8].mean() < 50  # block now bottom-left


# --------------------------------------------------------------------------- reading errors


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(InputFileError, match="nope.mp4"):
        VideoReader(missing)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputFileError, match="empty"):
        VideoReader(empty)


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not a regular file"):
        VideoReader(tmp_path)


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match="notes.mp4"):
        VideoReader(text)


def test_still_image_is_not_a_video(tmp_path: Path) -> None:
    png = tmp_path / "still.png"
    frame = av.VideoFrame.from_ndarray(_gradient(16, 16), format="rgb24")
    frame.to_image().save(png)
    with pytest.raises(VideoError, match="still.png"):
        VideoReader(png)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    _make_audio_source(wav, seconds=0.2, codec="pcm_s16le")
    with pytest.raises(VideoError, match="no video stream"):
        VideoReader(wav)


@pytest.mark.timeout(60)
def test_truncated_fixture_does_not_hang(fixture_video: Path, tmp_path: Path) -> None:
    data = fixture_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    try:  # the fixture keeps its index (moov) at the end, so a cut copy usually cannot open
        with VideoReader(cut) as reader:
            frames = list(reader)
    except VideoError as exc:
        assert "cut.mp4" in str(exc)
    else:
        assert 0 < len(frames) < FIXTURE_FRAMES
        assert reader.truncated


@pytest.mark.timeout(60)
def test_truncated_faststart_video_yields_leading_frames(
        clip: list[Frame], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    full = tmp_path / "full.mp4"
    with VideoWriter(full, 30) as writer:  # writer puts the index first (faststart)
        for frame in clip:
            writer.write(frame.image)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.75)])  # keep the first (large) key frame whole
    with caplog.at_level(logging.WARNING, logger="reenact.io.video"):
        with VideoReader(cut) as reader:
            frames = list(reader)
    assert 0 < len(frames) < len(clip)
    assert reader.truncated
    warnings = [r for r in caplog.records if "ended early" in r.getMessage()]
    assert len(warnings) == 1 and f"after {len(frames)} frames" in warnings[0].getMessage()


# --------------------------------------------------------------------------- writing


def test_round_trip_keeps_count_size_and_pixels(clip: list[Frame], tmp_path: Path) -> None:
    out = tmp_path / "round.mp4"
    with VideoWriter(out, 30) as writer:
        for frame in clip:
            writer.write(frame.image)
        assert writer.frames_written == 30
    with VideoReader(out) as reader:
        assert reader.size == (480, 480)
        assert reader.fps == pytest.approx(30.0)
        back = list(reader)
    assert len(back) == 30
    np.testing.assert_allclose(np.diff([f.t for f in back]), 1 / 30, atol=1e-3)
    err = np.mean([np.abs(a.image.astype(np.int16) - b.image).mean() for a, b in zip(clip, back)])
    assert err < 6
    assert _leftovers(tmp_path) == []
    assert out.stat().st_mode & 0o444 == 0o444  # readable like any other output


def test_explicit_timestamps_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "vfr.mp4"
    times = [10.0, 10.05, 10.2, 10.25, 10.6, 11.0]  # offset start, variable spacing
    with VideoWriter(out, 30) as writer:
        for t in times:
            writer.write(_gradient(64, 64), t=t)
    back = read_all(out)
    np.testing.assert_allclose([f.t for f in back], np.subtract(times, times[0]), atol=2e-3)


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    image = _gradient(77, 101)
    with VideoWriter(out, 25) as writer:
        for _ in range(5):
            writer.write(image)
        assert writer.size == (101, 77)
    with VideoReader(out) as reader:
        assert reader.size == (102, 78)
        back = list(reader)
    assert len(back) == 5
    shown = back[2].image.astype(np.int16)
    assert np.abs(shown[:77, :101] - image).mean() < 6
    assert np.abs(shown[77, :101] - image[76]).mean() < 10  # padded row repeats the last row
    assert np.abs(shown[:77, 101] - image[:, 100]).mean() < 10


def test_non_increasing_timestamp_is_rejected(tmp_path: Path) -> None:
    out = tmp_path / "times.mp4"
    image = _gradient(32, 32)
    with VideoWriter(out, 30) as writer:
        writer.write(image, t=0.0)
        writer.write(image, t=0.1)
        with pytest.raises(ValueError, match="increase"):
            writer.write(image, t=0.1)
        with pytest.raises(ValueError, match="increase"):
            writer.write(image, t=0.05)
        assert writer.frames_written == 2
        writer.write(image, t=0.2)  # the writer stays usable after a rejected frame
    assert len(read_all(out)) == 3


@pytest.mark.parametrize("bad", [
    np.zeros((32, 32, 3), np.float32),
    np.zeros((32, 32), np.uint8),
    np.zeros((32, 32, 4), np.uint8),
    np.zeros((32, 48, 3), np.uint8),
    [[0, 0, 0]],
], ids=["float32", "gray", "rgba", "other-size", "list"])
def test_bad_frames_raise_image_error(tmp_path: Path, bad: object) -> None:
    with VideoWriter(tmp_path / "bad.mp4", 30) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))
        with pytest.raises(ImageError):
            writer.write(bad)  # type: ignore[arg-type]
        assert writer.frames_written == 1


def test_exception_leaves_no_file_and_keeps_existing(clip: list[Frame], tmp_path: Path) -> None:
    new = tmp_path / "new.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(new, 30) as writer:
            writer.write(clip[0].image)
            raise RuntimeError("boom")
    assert not new.exists()

    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"previous contents")
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(existing, 30) as writer:
            writer.write(clip[0].image)
            raise RuntimeError("boom")
    assert existing.read_bytes() == b"previous contents"
    assert _leftovers(tmp_path) == []


def test_success_replaces_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with VideoWriter(out, 30) as writer:
        writer.write(_gradient(32, 32))
    assert len(read_all(out)) == 1


def test_no_frames_written_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "nothing.mp4"
    with pytest.raises(VideoError, match="No frames"):
        with VideoWriter(out, 30):
            pass
    assert not out.exists() and _leftovers(tmp_path) == []


def test_encoder_failure_is_video_error_and_leaves_nothing(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "x.mp4", 30, preset="no-such-preset")
    with pytest.raises(VideoError, match="x.mp4"):
        writer.write(_gradient(32, 32))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VideoError, match="closed"):
        writer.write(_gradient(32, 32))


def test_writer_rejects_bad_fps_and_codec(tmp_path: Path) -> None:
    for fps in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            VideoWriter(tmp_path / "x.mp4", fps)
    with pytest.raises(VideoError, match="no_such_codec"):
        VideoWriter(tmp_path / "x.mp4", 30, codec="no_such_codec")


# --------------------------------------------------------------------------- audio


def test_audio_is_copied_and_cut_to_video_length(tmp_path: Path) -> None:
    source = tmp_path / "talk.mp4"
    _make_audio_source(source, seconds=2.0)
    out = tmp_path / "dubbed.mp4"
    with VideoWriter(out, 25, audio_from=source) as writer:
        for _ in range(25):  # 1 s of video
            writer.write(_gradient(64, 64))
    streams = _streams(out)
    assert streams["audio"][0] == "aac"
    assert streams["audio"][1] == pytest.approx(1.0, abs=0.1)
    assert VideoReader(out).has_audio
    assert len(read_all(out)) == 25


def test_non_mp4_audio_is_transcoded_to_aac(tmp_path: Path) -> None:
    source = tmp_path / "tone.wav"
    _make_audio_source(source, seconds=1.0, codec="pcm_s16le")
    out = tmp_path / "dubbed.mp4"
    with VideoWriter(out, 10, audio_from=source) as writer:
        for _ in range(5):  # 0.5 s of video
            writer.write(_gradient(32, 32))
    codec, seconds = _streams(out)["audio"]
    assert codec == "aac" and seconds == pytest.approx(0.5, abs=0.1)


def test_audio_source_without_audio_writes_video_only(
        clip: list[Frame], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, 30) as writer:
        writer.write(clip[0].image)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="reenact.io.video"):
        with VideoWriter(out, 30, audio_from=silent) as writer:
            writer.write(clip[0].image)
    assert "no audio" in caplog.text
    assert set(_streams(out)) == {"video"}


def test_missing_audio_source(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="gone.mp4"):
        VideoWriter(tmp_path / "out.mp4", 30, audio_from=tmp_path / "gone.mp4")


# --------------------------------------------------------------------------- folders


def test_list_images_natural_order(tmp_path: Path) -> None:
    names = ["img10.png", "img2.JPG", "img1.jpeg", "b.webp", "a.bmp", "notes.txt", ".hidden.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.bmp", "b.webp", "img1.jpeg", "img2.JPG", "img10.png"]


def test_list_images_errors(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"x")
    with pytest.raises(InputFileError, match="no images"):
        list_images(tmp_path)
    with pytest.raises(InputFileError, match="does not exist"):
        list_images(tmp_path / "missing")


def test_path_kinds() -> None:
    assert is_video_path("a/b.MP4") and is_video_path(Path("x.mov")) and is_video_path("x.webm")
    assert not is_video_path("x.png") and not is_video_path("mp4")
    assert is_image_path("x.JPEG") and is_image_path("x.webp") and is_image_path("x.bmp")
    assert not is_image_path("x.mp4") and not is_image_path("x.gif")


def test_fraction_fps_accepted(tmp_path: Path) -> None:
    out = tmp_path / "ntsc.mp4"
    with VideoWriter(out, Fraction(30000, 1001)) as writer:
        for _ in range(3):
            writer.write(_gradient(32, 32))
    with VideoReader(out) as reader:
        assert reader.fps == pytest.approx(29.97, abs=0.01)
