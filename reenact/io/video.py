"""Video and image-folder I/O on PyAV (FFmpeg).

Reading
    ``VideoReader`` decodes one video stream into ``Frame`` objects: ``index`` (0-based decode
    order), ``t`` (seconds since the first frame, strictly increasing) and ``image`` (uint8 RGB,
    shape ``(H, W, 3)``, C-contiguous, display rotation applied). Truncated or corrupt files yield
    every frame that decodes, then stop with one warning and ``reader.truncated = True``.

Writing
    ``VideoWriter`` encodes uint8 RGB frames ``(H, W, 3)`` to H.264 yuv420p MP4. The file appears
    at its destination only after a clean ``close()``; odd sizes are padded to even by edge
    replication; audio can be copied (or transcoded to AAC) from another media file.

Folders
    ``list_images`` lists a folder's images in natural order; ``is_video_path`` and
    ``is_image_path`` classify paths by extension.
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterator

import av
import numpy as np

from reenact.errors import ImageError, InputFileError, VideoError
from reenact.io.images import IMAGE_EXTENSIONS, is_image_path
from reenact.utils import atomic_path

logger = logging.getLogger(__name__)

__all__ = [
    "Frame", "VideoReader", "VideoWriter", "read_all", "list_images", "is_video_path",
    "is_image_path", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "WRITABLE_VIDEO_EXTENSIONS",
]

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                              ".wmv", ".flv", ".ts", ".3gp", ".ogv"})

WRITABLE_VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv")
"""Containers ``VideoWriter`` writes H.264 into (outputs of run, track --preview, eval)."""

# Demuxers that open still images as one-frame "videos"; a video reader must refuse them.
_IMAGE_DEMUXERS = frozenset({"image2", "tty"})
# Audio codecs MP4 can hold as they are; anything else is transcoded to AAC.
_MP4_AUDIO_COPY = frozenset({"aac", "mp3", "opus", "ac3", "eac3", "alac"})
_DEFAULT_FPS = 30.0


# --------------------------------------------------------------------------- paths


def is_video_path(path: str | os.PathLike) -> bool:
    """True when ``path`` ends in a common video container extension (mp4, mov, mkv, webm, ...)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _natural_key(path: Path) -> list[int | str]:
    """Sort key that orders ``img2`` before ``img10`` (case-insensitive)."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name.lower())]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Return the image files directly inside ``folder``, sorted naturally by name.

    Hidden files (names starting with ``.``) are skipped. Raises ``InputFileError`` when the
    folder does not exist, is not a folder, or holds no png/jpg/jpeg/bmp/webp file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputFileError(f"Image folder {folder} {what}.")
    images = [p for p in folder.iterdir()
              if p.is_file() and not p.name.startswith(".") and is_image_path(p)]
    if not images:
        raise InputFileError(f"Image folder {folder} holds no images "
                             f"({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return sorted(images, key=_natural_key)


def _check_input_file(path: Path, kind: str = "Video file") -> None:
    """Raise ``InputFileError`` unless ``path`` is an existing, non-empty regular file."""
    if not path.exists():
        raise InputFileError(f"{kind} {path} does not exist.")
    if not path.is_file():
        raise InputFileError(f"{kind} {path} is not a regular file.")
    if path.stat().st_size == 0:
        raise InputFileError(f"{kind} {path} is empty (0 bytes).")


def _open_media(path: Path) -> av.container.InputContainer:
    """Open ``path`` with PyAV for reading; ``VideoError`` when FFmpeg cannot parse it."""
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise VideoError(f"{path} is not a video file FFmpeg can read ({_reason(exc)}).") from exc
    except OSError as exc:
        raise InputFileError(f"Cannot read {path}: {exc}.") from exc


def _reason(exc: BaseException) -> str:
    """Short human text for an FFmpeg/OS error."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded video frame.

    Attributes:
        index: 0-based position in decode (= presentation) order.
        t: seconds since the first frame (first frame is 0.0); strictly increasing.
        image: uint8 RGB array of shape ``(H, W, 3)``, C-contiguous.
    """

    index: int
    t: float
    image: np.ndarray


class _Clock:
    """Turns frame pts into strictly increasing seconds relative to the first frame."""

    def __init__(self, fps: float) -> None:
        self.step = 1.0 / fps
        self.offset: float | None = None
        self.last: float | None = None

    def __call__(self, frame: av.VideoFrame, index: int) -> float:
        secs = frame.time
        if secs is None:
            t = index * self.step
        else:
            if self.offset is None:
                self.offset = secs - index * self.step
            t = secs - self.offset
        if self.last is not None and t <= self.last:  # repeated/backward pts in broken files
            t = self.last + self.step
        self.last = t
        return t


def _display_size(frame: av.VideoFrame) -> tuple[int, int]:
    """``(W, H)`` of ``frame`` once its display rotation is applied."""
    if round((frame.rotation or 0) / 90) % 2:
        return frame.height, frame.width
    return frame.width, frame.height


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Convert a decoded frame to uint8 RGB ``(H, W, 3)``, applying its display rotation."""
    image = frame.to_ndarray(format="rgb24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    if quarter_turns:
        image = np.rot90(image, quarter_turns)  # counter-clockwise, as FFmpeg displays it
    return np.ascontiguousarray(image)


class VideoReader(AbstractContextManager["VideoReader"]):
    """Decode the first video stream of a file into ``Frame`` objects.

    >>> with VideoReader("clip.mp4") as reader:
    ...     for frame in reader:          # frame.image: (H, W, 3) uint8 RGB
    ...         ...

    Opening decodes the first frame, so a file with no decodable frame fails here with
    ``VideoError``. Iterating again restarts from the first frame. ``truncated`` is set after an
    iteration that ended early because the file is cut short or corrupt.

    Raises:
        InputFileError: the path is missing, not a file, or empty.
        VideoError: the file is not a video FFmpeg can decode (text, still image, no video stream).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.truncated = False
        self._container: av.container.InputContainer | None = None
        self._generation = 0
        _check_input_file(self.path)
        self._start()

    # -- opening -----------------------------------------------------------------------

    def _start(self) -> None:
        """(Re)open the container and decode the first frame into ``self._head``."""
        self._close_container()
        self._container = _open_media(self.path)
        try:
            self._stream = self._video_stream(self._container)
            self._probe()
            self._error: BaseException | None = None  # first decode/demux error
            self._errors = 0
            self._source = self._decode()
            self._head = next(self._source, None)
            if self._head is None:
                cause = f" ({_reason(self._error)})" if self._error else ""
                raise VideoError(f"No frame of {self.path} could be decoded{cause}; "
                                 "the file is truncated, corrupt or empty of video.")
            self._size = _display_size(self._head)
        except BaseException:
            self._close_container()
            raise

    def _video_stream(self, container: av.container.InputContainer) -> av.video.stream.VideoStream:
        """The first video stream; ``VideoError`` for still images and audio-only files."""
        fmt = container.format.name
        if fmt in _IMAGE_DEMUXERS or fmt.endswith("_pipe"):
            raise VideoError(f"{self.path} is a still image ({fmt}), not a video.")
        if not container.streams.video:
            raise VideoError(f"{self.path} has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return stream

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Yield decoded frames, skipping packets that fail to decode; stop at a demux error."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets, None)
            except av.FFmpegError as exc:  # the container itself is cut short or broken
                self._note_error(exc)
                yield from self._drain()
                return
            if packet is None:
                return
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:  # one bad packet: keep what follows
                self._note_error(exc)
                continue
            yield from frames

    def _drain(self) -> Iterator[av.VideoFrame]:
        """Frames still buffered in the decoder after the demuxer failed."""
        try:
            yield from self._stream.codec_context.decode(None)
        except av.FFmpegError:
            pass

    def _note_error(self, exc: BaseException) -> None:
        self._errors += 1
        self._error = self._error or exc

    def _probe(self) -> None:
        """Cache header facts so the properties still answer after ``close()``."""
        s, container = self._stream, self._container
        rate = s.average_rate or s.guessed_rate or s.base_rate
        self._fps = float(rate) if rate and rate > 0 else _DEFAULT_FPS
        self._declared_frames = int(s.frames or 0)
        if s.duration and s.time_base:
            self._duration: float | None = float(s.duration * s.time_base)
        else:
            self._duration = container.duration / av.time_base if container.duration else None
        self._has_audio = bool(container.streams.audio)

    # -- properties --------------------------------------------------------------------

    @property
    def fps(self) -> float:
        """Average frame rate in frames per second (30.0 when the file does not say)."""
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)`` of the frames as yielded (after display rotation)."""
        return self._size

    @property
    def duration(self) -> float | None:
        """Length in seconds from the stream or container header, or None if unknown."""
        return self._duration

    @property
    def num_frames(self) -> int | None:
        """Frame count from the header, else estimated from duration x fps; None if unknown."""
        if self._declared_frames:
            return self._declared_frames
        return round(self._duration * self._fps) if self._duration else None

    @property
    def has_audio(self) -> bool:
        """True when the file also holds at least one audio stream."""
        return self._has_audio

    # -- iteration ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        if self._container is None:
            raise VideoError(f"VideoReader for {self.path} is closed.")
        if self._head is None:  # a previous iteration consumed the stream: start over
            self._start()
        head, self._head = self._head, None
        return self._frames(head)

    def _frames(self, head: av.VideoFrame) -> Iterator[Frame]:
        """Yield ``Frame`` objects for ``head`` and the rest of the stream."""
        self.truncated = False
        generation, source, clock = self._generation, self._source, _Clock(self.fps)
        av_frame, index = head, 0
        while av_frame is not None:
            yield Frame(index, clock(av_frame, index), _to_rgb(av_frame))
            if self._generation != generation:  # PyAV must not touch a closed container
                raise VideoError(f"VideoReader for {self.path} was closed or restarted "
                                 "while this iteration was running.")
            av_frame, index = next(source, None), index + 1
        self._finish(index)

    def _finish(self, count: int) -> None:
        """Flag and log (once) an iteration that hit errors or ended before the declared end."""
        expected = self._declared_frames
        if self._errors == 0 and expected - count <= max(2, expected // 100):
            return
        self.truncated = True
        details = [f"{expected} frames expected"] if expected else []
        if self._errors:
            details.append(f"{self._errors} undecodable packet(s): {_reason(self._error)}")
        logger.warning("Video %s ended early after %d frames (%s); the file is truncated or "
                       "corrupt.", self.path, count, "; ".join(details))

    # -- closing -----------------------------------------------------------------------

    def _close_container(self) -> None:
        self._generation += 1  # invalidates running iterations
        if self._container is not None:
            self._container.close()
            self._container = None

    def close(self) -> None:
        """Release the file; safe to call more than once."""
        self._close_container()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_all(path: str | os.PathLike, max_frames: int | None = None) -> list[Frame]:
    """Decode a whole video (or its first ``max_frames`` frames) into a list of ``Frame``."""
    frames: list[Frame] = []
    with VideoReader(path) as reader:
        if max_frames is not None and max_frames <= 0:
            return frames
        for frame in reader:
            frames.append(frame)
            if max_frames is not None and len(frames) >= max_frames:
                break
    return frames


# --------------------------------------------------------------------------- writing


def _pad_even(image: np.ndarray) -> np.ndarray:
    """Pad ``(H, W, 3)`` by repeating the last row/column so H and W are even (yuv420p)."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if not (pad_h or pad_w):
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _check_fps(fps: float) -> Fraction:
    """Validate ``fps`` and return it as a Fraction (29.97 -> 2997/100)."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) \
            or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}.")
    return Fraction(fps).limit_denominator(1001)


def _check_encoder(codec: str) -> None:
    """``VideoError`` unless this FFmpeg build has a video encoder called ``codec``."""
    try:
        found = av.Codec(codec, "w")
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"This FFmpeg build has no encoder {codec!r}.") from exc
    if found.type != "video":
        raise VideoError(f"Codec {codec!r} is not a video encoder.")


class _AudioCopier:
    """Copies the first audio stream of a media file into an output, up to a time.

    Packets are copied as they are when MP4 can hold the codec (AAC, MP3, Opus, AC-3, ALAC);
    other codecs are decoded and re-encoded to AAC. Audio time 0 is the source's first sample.
    """

    def __init__(self, path: Path) -> None:
        _check_input_file(path, "Audio source")
        self.path = path
        self._input = _open_media(path)
        self.stream = self._input.streams.audio[0] if self._input.streams.audio else None
        self.copy = self.stream is not None and self.stream.codec_context.name in _MP4_AUDIO_COPY
        self._out: av.stream.Stream | None = None
        self._packets: Iterator[av.Packet] | None = None
        self._pending: av.Packet | None = None
        self._start = 0
        self._next_sample = 0  # pts of the next transcoded frame, in samples

    def add_stream(self, container: av.container.OutputContainer) -> None:
        """Add the output audio stream (before the first packet is muxed)."""
        src = self.stream
        if self.copy:
            self._out = container.add_stream_from_template(src)
        else:
            ctx = src.codec_context
            self._out = container.add_stream("aac", rate=ctx.sample_rate or 48000)
            self._out.layout = "mono" if ctx.channels == 1 else "stereo"
            self._out.format = "fltp"
        self._start = src.start_time or 0
        self._packets = self._input.demux(src)

    def feed(self, container: av.container.OutputContainer, until: float) -> None:
        """Mux source audio that starts before ``until`` seconds."""
        for packet in self._packets_before(until):
            if self.copy:
                self._copy_packet(container, packet)
            else:
                self._transcode_packet(container, packet)

    def _packets_before(self, until: float) -> Iterator[av.Packet]:
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if packet.pts is None or packet.dts is None:  # demuxer flush packet
                continue
            if float((packet.pts - self._start) * packet.time_base) >= until:
                self._pending = packet
                return
            yield packet

    def _copy_packet(self, container: av.container.OutputContainer, packet: av.Packet) -> None:
        packet.pts -= self._start
        packet.dts -= self._start
        packet.stream = self._out
        container.mux(packet)

    def _transcode_packet(self, container: av.container.OutputContainer, packet: av.Packet) -> None:
        for frame in packet.decode():
            frame.pts, frame.time_base = self._next_sample, Fraction(1, frame.sample_rate)
            self._next_sample += frame.samples
            container.mux(self._out.encode(frame))

    def finish(self, container: av.container.OutputContainer, until: float) -> None:
        """Mux the remaining audio before ``until`` and flush the AAC encoder if transcoding."""
        self.feed(container, until)
        if not self.copy:
            container.mux(self._out.encode(None))

    def close(self) -> None:
        self._input.close()


def _match_mode(tmp: Path, dest: Path) -> None:
    """Give the temporary file the destination's permissions (0644 for a new file).

    ``tempfile.mkstemp`` creates files readable by the owner only, which would otherwise carry
    over to the finished video.
    """
    try:
        mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o644
        os.chmod(tmp, mode)
    except OSError:  # permissions are a courtesy; never fail a finished video over them
        pass


class VideoWriter(AbstractContextManager["VideoWriter"]):
    """Encode uint8 RGB frames ``(H, W, 3)`` to an H.264 (yuv420p) MP4, atomically.

    >>> with VideoWriter("out.mp4", fps=30, audio_from="driving.mp4") as writer:
    ...     for image in images:                 # (H, W, 3) uint8 RGB, all the same size
    ...         writer.write(image)

    The frame size is fixed by the first frame; odd widths/heights are padded to even by
    repeating the last column/row. Frames go to a temporary file beside ``path`` that replaces
    ``path`` only when ``close()`` (or a ``with`` block) finishes without an exception; otherwise
    the temporary file is removed and an existing ``path`` is left untouched.

    Args:
        path: destination ``.mp4``.
        fps: nominal frame rate; frame ``i`` is shown at ``i / fps`` unless ``write`` gets ``t``.
        codec: FFmpeg video encoder name.
        crf, preset: x264/x265 quality and speed settings (ignored by other encoders).
        audio_from: media file whose first audio stream is added, cut to the video's length.

    Raises:
        ValueError: ``fps`` is not a positive finite number.
        VideoError: the encoder is missing, or ``audio_from`` is not readable media.
        InputFileError: ``audio_from`` does not exist or is empty.
    """

    def __init__(self, path: str | os.PathLike, fps: float, *, codec: str = "libx264",
                 crf: int = 18, preset: str = "veryfast",
                 audio_from: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self._rate = _check_fps(fps)
        _check_encoder(codec)
        self.codec, self.crf, self.preset = codec, crf, preset
        self._time_base = Fraction(1, max(1, round(float(self._rate) * 1000)))
        self._audio = self._open_audio(audio_from)
        self._atomic: AbstractContextManager[Path] | None = None
        self._container: av.container.OutputContainer | None = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self._last_pts = -1
        self._count = 0
        self._closed = False

    def _open_audio(self, audio_from: str | os.PathLike | None) -> _AudioCopier | None:
        if audio_from is None:
            return None
        audio = _AudioCopier(Path(audio_from))
        if audio.stream is None:
            logger.warning("%s has no audio stream; %s is written without audio.",
                           audio_from, self.path)
            audio.close()
            return None
        return audio

    @property
    def fps(self) -> float:
        """Nominal frame rate given to the constructor."""
        return float(self._rate)

    @property
    def frames_written(self) -> int:
        """Number of frames accepted by ``write`` so far."""
        return self._count

    @property
    def size(self) -> tuple[int, int] | None:
        """``(W, H)`` of the input frames (before even-padding); None before the first frame."""
        return self._size

    # -- writing -----------------------------------------------------------------------

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        """Encode one frame.

        Args:
            image: uint8 RGB array ``(H, W, 3)``; same size as the first frame written.
            t: presentation time in seconds (relative to the first written frame's ``t``);
                must be strictly increasing. ``None`` places the frame at ``index / fps``.

        Raises:
            ImageError: wrong type, dtype, shape or size.
            ValueError: ``t`` is not finite or not later than the previous frame's time.
        """
        if self._closed:
            raise VideoError(f"VideoWriter for {self.path} is closed.")
        self._check_image(image)
        pts = self._next_pts(t)
        try:
            if self._container is None:
                self._open(image.shape[1], image.shape[0])
            self._encode(image, pts)
        except (av.FFmpegError, OSError) as exc:  # the encoder cannot go on: drop the file
            self._closed = True
            self._discard(exc)
            raise VideoError(f"Writing {self.path} failed ({_reason(exc)}).") from exc
        self._last_pts, self._count = pts, self._count + 1

    def _encode(self, image: np.ndarray, pts: int) -> None:
        """Encode ``image`` at ``pts`` and mux the audio that belongs before it."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_pad_even(image)), format="rgb24")
        frame.pts, frame.time_base = pts, self._time_base
        self._container.mux(self._stream.encode(frame))
        if self._audio is not None:
            self._audio.feed(self._container, float(pts * self._time_base))

    def _check_image(self, image: np.ndarray) -> None:
        """``ImageError`` unless ``image`` is uint8 ``(H, W, 3)`` matching the first frame."""
        if not isinstance(image, np.ndarray):
            raise ImageError(f"Video frames must be numpy arrays, got {type(image).__name__}.")
        if image.dtype != np.uint8:
            raise ImageError(f"Video frames must be uint8 RGB, got dtype {image.dtype}.")
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
            raise ImageError(f"Video frames must have shape (H, W, 3), got {image.shape}.")
        size = (image.shape[1], image.shape[0])
        if self._size is not None and size != self._size:
            raise ImageError(f"Frame size {size[0]}x{size[1]} differs from the first frame's "
                             f"{self._size[0]}x{self._size[1]}; all frames must match.")

    def _next_pts(self, t: float | None) -> int:
        """Presentation timestamp (in ``1 / (fps * 1000)`` s ticks) of the next frame."""
        if t is None:
            pts = round(self._count / self._rate / self._time_base)
        else:
            if not math.isfinite(t):
                raise ValueError(f"Frame time must be finite, got {t!r}.")
            self._t0 = t if self._t0 is None else self._t0
            pts = round((t - self._t0) / self._time_base)
        if pts <= self._last_pts:
            raise ValueError(f"Frame times must increase: frame {self._count} is at "
                             f"{float(pts * self._time_base):.6f} s, not after the previous "
                             f"frame at {float(self._last_pts * self._time_base):.6f} s.")
        return pts

    def _open(self, width: int, height: int) -> None:
        """Create the temporary file, the container and its streams for ``width x height``."""
        self._atomic = atomic_path(self.path)
        tmp = self._tmp = self._atomic.__enter__()
        self._size = (width, height)
        self._container = av.open(str(tmp), mode="w", format="mp4",
                                  options={"movflags": "+faststart"})
        stream = self._container.add_stream(self.codec, rate=self._rate)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = self._time_base
        stream.codec_context.time_base = self._time_base
        if self.codec in ("libx264", "libx265"):
            stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream
        if self._audio is not None:
            self._audio.add_stream(self._container)

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        """Flush the encoder and move the finished file into place.

        Raises ``VideoError`` (and leaves no file) when no frame was written or encoding fails.
        Calling it again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            self._release_audio()
            raise VideoError(f"No frames were written, so {self.path} was not created.")
        try:
            self._flush()
        except BaseException as exc:
            self._discard(exc)
            if isinstance(exc, av.FFmpegError):
                raise VideoError(f"Writing {self.path} failed ({_reason(exc)}).") from exc
            raise
        _match_mode(self._tmp, self.path)
        self._atomic.__exit__(None, None, None)

    def _flush(self) -> None:
        self._container.mux(self._stream.encode(None))
        if self._audio is not None:
            end = float(self._last_pts * self._time_base + 1 / self._rate)
            self._audio.finish(self._container, end)
        self._release_audio()
        self._container.close()

    def abort(self) -> None:
        """Stop without producing a file; an existing destination is left untouched."""
        if not self._closed:
            self._closed = True
            self._discard(None)

    def _discard(self, exc: BaseException | None) -> None:
        """Close everything and delete the temporary file."""
        self._release_audio()
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # already failing: the temporary file is deleted below anyway
                pass
        if self._atomic is not None:
            exc = exc or RuntimeError("video writing aborted")
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            self._atomic = None

    def _release_audio(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:
            self._closed = True
            self._discard(exc)
