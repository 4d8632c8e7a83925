"""Mesh warp: the target photo follows a moved MediaPipe face mesh (piecewise-affine, backward map).

The mesh is MediaPipe's own face-mesh tessellation (852 triangles over the 468 face points, taken
from the ``mediapipe`` package), completed by:

* **eye fans**: the tessellation leaves each eye opening as a hole; a fan of triangles from the
  iris centre (MediaPipe points 468 / 473) to the 16-point eye contour fills it, so the eye's own
  texture moves with the eyelids and the iris follows its centre (gaze);
* **a mouth fan**: likewise from the centre of the 20-point inner-lip contour. Where the driver
  opens a mouth the photo shows closed, this fan would stretch lip skin across the gap: that
  region is the **hole mask** (no source texture; see ``hole_mask``), filled by a model (or a
  plain dark interior, ``fill_mouth``);
* **two outer rings** beyond the face oval (anchors at 1.3x and 1.7x the oval's size about its
  centre): the first follows 75% of the oval's motion, the second stays still, so hair, ears,
  neck and background follow smoothly and fade to the untouched photo. Outside the second ring
  the map is the identity.

``backward_map`` gives, for every output pixel, where to read in the source image (a dense map
for ``cv2.remap`` or, with ``grid_from_map``, for ``torch.nn.functional.grid_sample``). It is
computed on a coarse grid (every ``step`` pixels: a piecewise-affine map is smooth) and upsampled
bilinearly. Per frame this costs one small rasterisation of ~1,050 triangle ids plus a gather;
it does not depend on tracking, so an engine can take the map (or the warped crop) as an input.

All point arrays are pixels with pixel centres at integers, ``[..., 2]`` (x, y).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .composite import FACE_OVAL

INNER_LIPS = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191],
                      np.int64)
"""MediaPipe's inner-lip contour, in order around the mouth opening."""
RIGHT_EYE = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246], np.int64)
LEFT_EYE = np.array([263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466], np.int64)
"""The subject's right and left eye contours (image left and right for a camera-facing face), in order."""
OUTER_LIP_SAMPLES = np.array([0, 37, 267, 39, 269, 17, 84, 314, 181, 405], np.int64)
"""Points on the lips' outer half (sampled for the lip colour)."""
SKIN_SAMPLES = np.array([50, 280, 205, 425, 151, 9, 101, 330], np.int64)
"""Points on the cheeks and forehead (sampled for the skin's brightness)."""
RIGHT_IRIS, LEFT_IRIS = 468, 473
"""Iris centres (each followed by its 4 iris-boundary points)."""
EYE_CONTOURS = (RIGHT_EYE, LEFT_EYE)
IRISES = (np.arange(RIGHT_IRIS, RIGHT_IRIS + 5), np.arange(LEFT_IRIS, LEFT_IRIS + 5))
"""Each eye's contour and its iris points (centre first), subject's right then left."""

RING_SCALES = (1.3, 1.7)
"""Outer anchor rings, as multiples of the face oval about its centre."""
RING_FOLLOW = (0.75, 0.0)
"""How much of the oval's motion each ring follows (the outer ring is still)."""

MOUTH_HUB = 478
RING1 = 479
RING2 = RING1 + len(FACE_OVAL)
NUM_VERTICES = RING2 + len(FACE_OVAL)
"""Vertices of the warp mesh: the 478 MediaPipe points, the mouth hub, then the two rings."""


@functools.lru_cache(maxsize=1)
def tessellation() -> np.ndarray:
    """MediaPipe's face-mesh triangles ``[852, 3]`` (from the mediapipe package's connection list,
    whose consecutive triplets of edges are the triangles)."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections

    e = np.array([(c.start, c.end) for c in FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION], np.int64)
    if len(e) % 3:
        raise RuntimeError("mediapipe's face tessellation is not a list of triangles")
    tri = e.reshape(-1, 3, 2)[:, :, 0]
    if not np.array_equal(e.reshape(-1, 3, 2)[:, :, 1], np.roll(tri, -1, axis=1)):
        raise RuntimeError("mediapipe's face tessellation edges do not close into triangles")
    return tri


def _fan(hub: int, loop: np.ndarray) -> np.ndarray:
    return np.stack([np.full(len(loop), hub), loop, np.roll(loop, -1)], 1)


def _strip(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    a, b = inner, np.roll(inner, -1)
    c, d = outer, np.roll(outer, -1)
    return np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])


@functools.lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """All triangles of the warp mesh ``[T, 3]``, in drawing order (later ones win where folded):
    outer rings, the face tessellation, the eye fans, the mouth fan."""
    ring1 = np.arange(RING1, RING1 + len(FACE_OVAL))
    ring2 = np.arange(RING2, RING2 + len(FACE_OVAL))
    return np.concatenate([
        _strip(ring1, ring2), _strip(FACE_OVAL, ring1), tessellation(),
        _fan(RIGHT_IRIS, RIGHT_EYE), _fan(LEFT_IRIS, LEFT_EYE), _fan(MOUTH_HUB, INNER_LIPS),
    ]).astype(np.int64)


def _rings(oval: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = oval.mean(0)
    return c, c + RING_SCALES[0] * (oval - c), c + RING_SCALES[1] * (oval - c)


def extend_mesh(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The warp mesh's vertices ``[NUM_VERTICES, 2]`` in the source and destination images from
    the 478 MediaPipe points of each (``[478, >=2]``): mouth hub and rings added. The rings are
    placed around the *source* face and follow a fraction of the oval's motion."""
    s = np.asarray(src, np.float64)[:, :2]
    d = np.asarray(dst, np.float64)[:, :2]
    if s.shape != (478, 2) or d.shape != (478, 2):
        raise ValueError(f"extend_mesh needs two [478, 2] meshes, got {s.shape} and {d.shape}")
    _, r1, r2 = _rings(s[FACE_OVAL])
    move = d[FACE_OVAL] - s[FACE_OVAL]
    src_ext = np.concatenate([s, s[INNER_LIPS].mean(0, keepdims=True), r1, r2])
    dst_ext = np.concatenate([d, d[INNER_LIPS].mean(0, keepdims=True),
                              r1 + RING_FOLLOW[0] * move, r2 + RING_FOLLOW[1] * move])
    return src_ext, dst_ext


def warp_region(src: np.ndarray, dst: np.ndarray, image_size: tuple[int, int], pad: int = 2) -> tuple[int, int, int, int]:
    """The box ``(x0, y0, x1, y1)`` of the image that a warp from ``src`` to ``dst`` (478-point
    meshes) can change: the outer ring's extent (clipped to the image)."""
    w, h = image_size
    s = np.asarray(src, np.float64)[:, :2]
    _, _, r2 = _rings(s[FACE_OVAL])
    pts = np.concatenate([r2, np.asarray(dst, np.float64)[:, :2]])
    x0, y0 = np.floor(pts.min(0)).astype(int) - pad
    x1, y1 = np.ceil(pts.max(0)).astype(int) + pad + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the face lies outside the image")
    return int(x0), int(y0), int(x1), int(y1)


def triangle_affines(src_ext: np.ndarray, dst_ext: np.ndarray,
                     triangles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the 2x3 affine map from destination to source pixels ``[T, 2, 3]``, and
    whether the destination triangle has an area ``[T]`` (degenerate ones own no pixels and map
    to their source centroid)."""
    tri = mesh_triangles() if triangles is None else triangles
    d = dst_ext[tri]  # [T,3,2]
    s = src_ext[tri]
    D = np.stack([d[:, 1] - d[:, 0], d[:, 2] - d[:, 0]], -1)  # [T,2,2], columns = edges
    S = np.stack([s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]], -1)
    det = D[:, 0, 0] * D[:, 1, 1] - D[:, 0, 1] * D[:, 1, 0]
    ok = np.abs(det) > 1e-3
    inv = np.zeros_like(D)
    dd = np.where(ok, det, 1.0)
    inv[:, 0, 0], inv[:, 0, 1] = D[:, 1, 1] / dd, -D[:, 0, 1] / dd
    inv[:, 1, 0], inv[:, 1, 1] = -D[:, 1, 0] / dd, D[:, 0, 0] / dd
    A = S @ inv
    A[~ok] = 0.0
    off = s[:, 0] - np.einsum("tij,tj->ti", A, d[:, 0])
    off[~ok] = s[~ok].mean(1)
    return np.concatenate([A, off[:, :, None]], 2), ok


def backward_map(src_ext: np.ndarray, dst_ext: np.ndarray, size: tuple[int, int], origin: tuple[float, float] = (0, 0),
                 step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Dense backward map of the mesh warp: for every output pixel of a ``size = (w, h)`` window
    whose top-left pixel is ``origin`` in destination coordinates, the source pixel to read.

    src_ext, dst_ext: ``[NUM_VERTICES, 2]`` from ``extend_mesh`` (any common pixel frame).
    step: grid spacing (pixels) on which the map is computed exactly before bilinear upsampling.
    Returns ``(map_x, map_y)``, float32 ``[h, w]`` each, in source pixels.
    """
    w, h = int(size[0]), int(size[1])
    step = max(int(step), 1)
    pad = 1 if step > 1 else 0  # one grid cell around the window: upsampling never clamps at its edges
    gw, gh = -(-w // step) + 2 * pad, -(-h // step) + 2 * pad
    ox, oy = float(origin[0]) - pad * step, float(origin[1]) - pad * step
    tri = mesh_triangles()
    A, ok = triangle_affines(src_ext, dst_ext, tri)
    # destination vertices in grid units (grid point j <-> pixel (j + 0.5) * step - 0.5, cv2.resize's convention)
    g = (dst_ext - (ox, oy) + 0.5) / step - 0.5
    gt = g[tri]
    lo, hi = gt.min(1), gt.max(1)
    visible = np.nonzero(ok & (hi[:, 0] >= -1) & (lo[:, 0] <= gw) & (hi[:, 1] >= -1) & (lo[:, 1] <= gh))[0]
    ids = np.full((gh, gw), -1, np.int32)
    pts = np.round(gt * 16).astype(np.int32)
    fill = cv2.fillConvexPoly
    for i in visible.tolist():
        fill(ids, pts[i], i, cv2.LINE_8, 4)
    xs = (np.arange(gw, dtype=np.float64) + 0.5) * step - 0.5 + ox
    ys = (np.arange(gh, dtype=np.float64) + 0.5) * step - 0.5 + oy
    X, Y = np.meshgrid(xs, ys)
    inside = ids >= 0
    a = A[ids[inside]]  # [K,2,3]
    px, py = X[inside], Y[inside]
    mx, my = X.copy(), Y.copy()  # identity outside the mesh
    mx[inside] = a[:, 0, 0] * px + a[:, 0, 1] * py + a[:, 0, 2]
    my[inside] = a[:, 1, 0] * px + a[:, 1, 1] * py + a[:, 1, 2]
    mx, my = mx.astype(np.float32), my.astype(np.float32)
    if step > 1:
        full = (gw * step, gh * step)
        p = pad * step
        mx = cv2.resize(mx, full, interpolation=cv2.INTER_LINEAR)[p:p + h, p:p + w]
        my = cv2.resize(my, full, interpolation=cv2.INTER_LINEAR)[p:p + h, p:p + w]
    return mx, my


def remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Read ``image`` at the map (bilinear, borders replicated): the warped image ``[h, w, C]``."""
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REPLICATE)


def grid_from_map(map_x, map_y, source_size: tuple[int, int]):
    """A pixel map -> the normalised sampling grid of ``torch.nn.functional.grid_sample``
    (``align_corners=False``), ``[1, h, w, 2]``, for a source image of ``(w, h)`` pixels."""
    import torch

    w, h = source_size
    mx = torch.as_tensor(map_x, dtype=torch.float32)
    my = torch.as_tensor(map_y, dtype=torch.float32)
    return torch.stack([(mx + 0.5) * (2.0 / w) - 1.0, (my + 0.5) * (2.0 / h) - 1.0], -1)[None]


def remap_torch(image, map_x, map_y):
    """``grid_sample`` version of ``remap`` for images already on a (GPU) device: ``[B, C, H, W]``
    float in, ``[B, C, h, w]`` out (bilinear, borders replicated)."""
    import torch.nn.functional as F

    grid = grid_from_map(map_x, map_y, (image.shape[-1], image.shape[-2])).to(image.device)
    return F.grid_sample(image, grid.expand(image.shape[0], -1, -1, -1), mode="bilinear", padding_mode="border",
                         align_corners=False)


# --------------------------------------------------------------------------- holes


def polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


HOLE_GAIN = 2.0
"""A mouth opened to twice the photo's opening (or more) is all hole: the photo's own interior,
stretched that far, no longer looks like a mouth."""


def hole_strength(src: np.ndarray, dst: np.ndarray) -> float:
    """How much of the destination mouth opening has no source texture: 1 where the photo's mouth
    is closed and the driver's opens, 0 where the photo already shows as wide an opening
    (``HOLE_GAIN`` times the opening's relative growth, clipped to [0, 1])."""
    a_src = polygon_area(np.asarray(src, np.float64)[INNER_LIPS, :2])
    a_dst = polygon_area(np.asarray(dst, np.float64)[INNER_LIPS, :2])
    if a_dst <= 1e-6:
        return 0.0
    return float(np.clip(HOLE_GAIN * (1.0 - a_src / a_dst), 0.0, 1.0))


def hole_mask(src: np.ndarray, dst: np.ndarray, size: tuple[int, int], origin: tuple[float, float] = (0, 0),
              out: np.ndarray | None = None) -> np.ndarray:
    """Float32 ``[h, w]`` mask in [0, 1] of the output pixels with no source texture: the inside of
    the destination mouth opening (anti-aliased), times ``hole_strength``. ``src``/``dst``: the
    478-point meshes in the source and destination frames."""
    w, h = int(size[0]), int(size[1])
    m = np.zeros((h, w), np.float32) if out is None else out
    if out is not None:
        m.fill(0.0)
    k = hole_strength(src, dst)
    if k <= 0.0:
        return m
    poly = np.asarray(dst, np.float64)[INNER_LIPS, :2] - np.asarray(origin, np.float64)
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], float(k), cv2.LINE_AA, 4)
    return m


@dataclass(frozen=True)
class MouthColours:
    """A plausible mouth interior for one photo: ``dark`` (deep inside) and ``edge`` (next to the
    lips), RGB 0-255, derived from the photo's own lip colour; and ``skin``, the photo's skin
    brightness (``DriverMouth`` matches a driver's interior to it)."""

    dark: np.ndarray
    edge: np.ndarray
    skin: float

    @staticmethod
    def sample(image: np.ndarray, landmarks: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The median colour ``[3]`` of ``image`` at the given mesh points."""
        pts = np.asarray(landmarks, np.float64)[points, :2]
        h, w = image.shape[:2]
        xy = np.clip(np.round(pts).astype(int), 0, [w - 1, h - 1])
        return np.median(image[xy[:, 1], xy[:, 0]].astype(np.float64), 0)

    @classmethod
    def skin_brightness(cls, image: np.ndarray, landmarks: np.ndarray) -> float:
        """The cheeks' and forehead's luma (0-255)."""
        return float(cls.sample(image, landmarks, SKIN_SAMPLES) @ (0.299, 0.587, 0.114))

    @classmethod
    def from_photo(cls, image: np.ndarray, landmarks: np.ndarray) -> MouthColours:
        # the lips' own colour, sampled on the outer lip contour (the inner one may show teeth)
        lip = cls.sample(image, landmarks, OUTER_LIP_SAMPLES)
        return cls(dark=np.array([24.0, 9.0, 11.0]) + 0.05 * lip, edge=0.62 * lip,
                   skin=cls.skin_brightness(image, landmarks))


def fill_mouth(image: np.ndarray, hole: np.ndarray, colours: MouthColours, mouth_height: float,
               box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Paint a dark mouth interior, shaded toward the lips, where ``hole`` > 0 (in place; returns
    ``image``). ``mouth_height``: the opening's height in pixels (sets the shading's width);
    ``box``: ``(x0, y0, x1, y1)`` known to hold the whole hole (skips searching the mask)."""
    if box is None:
        ys, xs = np.nonzero(hole > 1e-3)
        if len(xs) == 0:
            return image
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return image
    m = hole[y0:y1, x0:x1]
    sigma = max(0.18 * float(mouth_height), 0.7)
    core = cv2.GaussianBlur((m > 0.5).astype(np.float32), (0, 0), sigma)
    depth = np.clip(2.4 * core - 1.0, 0.0, 1.0)[..., None]  # 0 at the lips, 1 deep inside
    inner = colours.edge + depth * (colours.dark - colours.edge)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    roi += m[..., None] * (inner - roi)
    image[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(image.dtype)
    return image


MOUTH_CORNERS = (78, 308)
"""The inner lips' corners (the opening's width)."""

MOUTH_FAN = _fan(len(INNER_LIPS), np.arange(len(INNER_LIPS)))
"""The opening's triangles over [the 20 inner-lip points, their centre]."""


def _opening(mesh: np.ndarray) -> tuple[np.ndarray, float]:
    """The inner-lip contour with its centre appended ``[21, 2]``, and the opening's area over its
    squared width (how open the mouth is, whatever the face's size)."""
    m = np.asarray(mesh, np.float64)
    lips = m[INNER_LIPS, :2]
    width2 = float(np.sum((m[MOUTH_CORNERS[0], :2] - m[MOUTH_CORNERS[1], :2]) ** 2))
    return np.concatenate([lips, lips.mean(0, keepdims=True)]), polygon_area(lips) / max(width2, 1e-6)


@dataclass(frozen=True)
class DriverMouth:
    """The driver's own mouth interior, for the opening the photo cannot show: the driver frame
    ``image`` ``[H, W, 3]`` uint8 (the same channel order as the photo), its tracked ``mesh``
    (``[478, >=2]`` pixels of that frame), and ``gain``, one brightness gain for the interior: the
    square root of the photo's skin brightness over the driver's, within [0.7, 1.4]. The two
    faces' brightness differs by exposure (which the interior should follow) and by skin tone
    (which it should not: teeth are as white on any face), and one photo cannot tell them apart,
    so the gain goes half the way; one gain for all channels keeps teeth white, as a per-channel
    one taken from the lips or the skin would tint them.

    The interior is read through the fan of the driver's inner-lip contour onto the same fan of the
    destination contour, so its edge meets the warped lips wherever the two mouths differ in size,
    shape or head pose. Where the driver's mouth is less open than the destination's (the smoothed
    mesh lags a closing mouth), its interior fades into the plain dark one (``weight``)."""

    image: np.ndarray
    mesh: np.ndarray
    gain: float

    @classmethod
    def from_frame(cls, image: np.ndarray, mesh: np.ndarray, photo_colours: MouthColours) -> DriverMouth:
        ratio = photo_colours.skin / max(MouthColours.skin_brightness(image, mesh), 8.0)
        return cls(image, np.asarray(mesh, np.float64)[:, :2], float(np.clip(np.sqrt(ratio), 0.7, 1.4)))

    def weight(self, dst: np.ndarray) -> float:
        """1 where the driver's opening is at least 0.7 of the destination's (relative to each
        mouth's width), fading to 0 at 0.3: a nearly closed driver mouth has no interior to show."""
        _, a_drv = _opening(self.mesh)
        _, a_dst = _opening(dst)
        if a_dst <= 1e-6:
            return 0.0
        return float(np.clip((a_drv / a_dst - 0.3) / 0.4, 0.0, 1.0))

    def patch(self, dst: np.ndarray, box: tuple[int, int, int, int], origin: tuple[float, float] = (0, 0)) -> np.ndarray:
        """The driver's interior seen through the destination opening: ``[y1-y0, x1-x0, 3]`` float32
        (0-255 levels, times ``gain``) over ``box`` of a window whose top-left pixel is ``origin``
        in the destination's pixels (``dst``: the destination 478-point mesh)."""
        x0, y0, x1, y1 = box
        d = _opening(dst)[0] - (origin[0] + x0, origin[1] + y0)  # in the box's pixels
        A, ok = triangle_affines(_opening(self.mesh)[0], d, MOUTH_FAN)
        w, h = x1 - x0, y1 - y0
        ids = np.full((h, w), -1, np.int32)
        pts = np.round(d[MOUTH_FAN] * 16).astype(np.int32)
        for i in np.nonzero(ok)[0].tolist():
            cv2.fillConvexPoly(ids, pts[i], i, cv2.LINE_8, 4)
        # pixels just outside the fan (the anti-aliased rim) read through their nearest triangle's map
        if (ids < 0).any() and (ids >= 0).any():
            _, lab = cv2.distanceTransformWithLabels((ids < 0).astype(np.uint8), cv2.DIST_L2, 3,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
            near = np.zeros(int(lab.max()) + 1, np.int32)  # each inside pixel's label -> its triangle
            near[lab[ids >= 0]] = ids[ids >= 0]
            ids = np.where(ids >= 0, ids, near[lab])
        elif not (ids >= 0).any():
            ids[:] = int(np.argmax(ok)) if ok.any() else 0
        X, Y = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        a = A[ids]
        mx = (a[..., 0, 0] * X + a[..., 0, 1] * Y + a[..., 0, 2]).astype(np.float32)
        my = (a[..., 1, 0] * X + a[..., 1, 1] * Y + a[..., 1, 2]).astype(np.float32)
        return remap(self.image, mx, my).astype(np.float32) * self.gain


def blend_interior(image: np.ndarray, hole: np.ndarray, patch: np.ndarray, weight: float,
                   box: tuple[int, int, int, int]) -> np.ndarray:
    """Blend ``patch`` (``DriverMouth.patch`` over ``box``) into ``image`` where ``hole`` > 0,
    times ``weight`` (in place, over ``fill_mouth``'s interior; returns ``image``)."""
    x0, y0, x1, y1 = box
    if weight <= 0.0 or x1 <= x0 or y1 <= y0:
        return image
    m = (weight * hole[y0:y1, x0:x1])[..., None]
    roi = image[y0:y1, x0:x1].astype(np.float32)
    roi += m * (patch - roi)
    image[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(image.dtype)
    return image


def lips_box(dst: np.ndarray, size: tuple[int, int], origin: tuple[float, float] = (0, 0)) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the box of a ``size = (w, h)`` window (top-left pixel ``origin``)
    that holds the destination mouth opening (and so its hole)."""
    lips = np.asarray(dst, np.float64)[INNER_LIPS, :2] - np.asarray(origin, np.float64)
    lo, hi = np.floor(lips.min(0)).astype(int) - 1, np.ceil(lips.max(0)).astype(int) + 2
    return max(int(lo[0]), 0), max(int(lo[1]), 0), min(int(hi[0]), size[0]), min(int(hi[1]), size[1])


def mouth_height(dst: np.ndarray) -> float:
    """The destination mouth opening's height (inner lips 13 to 14), pixels."""
    d = np.asarray(dst, np.float64)
    return float(np.linalg.norm(d[13, :2] - d[14, :2]))


# --------------------------------------------------------------------------- the photo, warped per frame


@dataclass
class WarpFrame:
    """One frame's warp of a target: the destination mesh ``[478,3]`` (photo pixels), the dense
    backward map of the photo's warp region (``map_x``/``map_y``, ``[h, w]`` float32, photo
    pixels), its hole mask ``[h, w]``, and, when asked for, the same warp in the model's crop:
    ``crop`` (the warped target crop ``[R, R, 3]`` uint8, its opened mouth filled as the ``warp``
    model shows it), ``crop_hole`` ``[R, R]`` and the crop maps; with a driver's mouth, ``mouth``:
    its interior over ``hole_box`` and the weight it is blended with (``DriverMouth``)."""

    mesh: np.ndarray
    map_x: np.ndarray
    map_y: np.ndarray
    hole: np.ndarray
    hole_box: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) holding the hole, region pixels; None: none
    crop: np.ndarray | None = None
    crop_hole: np.ndarray | None = None
    crop_map: tuple[np.ndarray, np.ndarray] | None = None
    mouth: tuple[float, np.ndarray] | None = None  # (weight, patch over hole_box): the driver's interior


class WarpCompositor:
    """Moves one target photo by the mesh warp at full resolution and adds what a generator paints.

    photo: ``[H, W, 3]`` uint8; landmarks: the photo's ``[478, >=2]`` mesh; M: the 2x3
    photo-to-crop matrix of the model's crop of size ``crop_size``; crop: that crop (uint8).

    Only the warp region (the outer anchor ring's box) ever changes, so per frame only that
    region is computed: its backward map (on a grid of at most ``grid`` points a side), one
    ``cv2.remap`` of the photo, the mouth interior where the mouth opened, and the generator's
    residual inside the face oval. Output frames are written into a small ring of preallocated
    photo-sized buffers (no per-frame copy of the whole photo): a returned frame stays valid
    until ``buffers - 1`` further frames have been rendered.
    """

    def __init__(self, photo: np.ndarray, landmarks: np.ndarray, M: np.ndarray, crop_size: int,
                 crop: np.ndarray | None = None, *, buffers: int = 3, grid: int = 128, dilate: float = 0.03,
                 feather: float = 0.05):
        from .align import apply_affine, warp_to_crop
        from .composite import face_mask

        self.photo = np.ascontiguousarray(photo)
        self.src = np.asarray(landmarks, np.float64)[:, :2].copy()
        self.M = np.asarray(M, np.float64)
        self.crop_size = int(crop_size)
        self.crop = warp_to_crop(self.photo, self.M, self.crop_size) if crop is None else np.ascontiguousarray(crop)
        self.src_crop = apply_affine(self.M, self.src)
        h, w = self.photo.shape[:2]
        self.x0, self.y0, self.x1, self.y1 = warp_region(self.src, self.src, (w, h), pad=4)
        rw, rh = self.x1 - self.x0, self.y1 - self.y0
        self.step = max(1, -(-max(rw, rh) // grid))
        self.crop_step = max(1, -(-self.crop_size // grid))
        self.colours = MouthColours.from_photo(self.photo, self.src)
        # the face oval's feathered mask in the source photo (warped along each frame for the residual)
        self._mask_src = face_mask(self.src, (w, h), dilate, feather)
        self._buffers = [self.photo.copy() for _ in range(max(int(buffers), 1))]
        self._next = 0

    @property
    def region(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``: the part of the photo the warp can change."""
        return self.x0, self.y0, self.x1, self.y1

    def frame(self, mesh: np.ndarray, *, crop: bool = False, mouth: DriverMouth | None = None) -> WarpFrame:
        """The warp of one frame to the destination ``mesh`` (``[478, >=2]`` photo pixels); with
        ``crop``, also the warped target crop and its hole mask for a model. With ``mouth`` (the
        driver's frame and mesh), an opened mouth shows the driver's own interior (teeth, tongue)
        over the dark one; it is read here, so the driver frame need not outlive this call."""
        from .align import apply_affine

        dst = np.asarray(mesh, np.float64)
        src_ext, dst_ext = extend_mesh(self.src, dst)
        size = (self.x1 - self.x0, self.y1 - self.y0)
        mx, my = backward_map(src_ext, dst_ext, size, (self.x0, self.y0), self.step)
        hole = hole_mask(self.src, dst, size, (self.x0, self.y0))
        opened = hole_strength(self.src, dst) > 0
        box = lips_box(dst, size, (self.x0, self.y0)) if opened else None
        wf = WarpFrame(dst, mx, my, hole, box)
        k = mouth.weight(dst) if mouth is not None and opened else 0.0
        if k > 0 and box[2] > box[0] and box[3] > box[1]:
            wf.mouth = (k, mouth.patch(dst, box, (self.x0, self.y0)))
        if crop:
            dst_c = apply_affine(self.M, dst[:, :2])
            s_c, d_c = extend_mesh(self.src_crop, dst_c)
            R = self.crop_size
            cmx, cmy = backward_map(s_c, d_c, (R, R), (0, 0), self.crop_step)
            wf.crop_map = (cmx, cmy)
            wf.crop = remap(self.crop, cmx, cmy)
            wf.crop_hole = hole_mask(self.src_crop, dst_c, (R, R))
            if opened:  # the crop as the warp model renders it: the opened mouth filled
                fill_mouth(wf.crop, wf.crop_hole, self.colours, mouth_height(dst_c))
                cbox = lips_box(dst_c, (R, R))
                if wf.mouth is not None and cbox[2] > cbox[0] and cbox[3] > cbox[1]:
                    blend_interior(wf.crop, wf.crop_hole, mouth.patch(dst_c, cbox), k, cbox)
        return wf

    def driver_mouth(self, image: np.ndarray, mesh: np.ndarray) -> DriverMouth:
        """The driver frame's mouth for ``frame(mouth=...)``, brightness-matched to this photo's skin."""
        return DriverMouth.from_frame(image, mesh, self.colours)

    def crop_of(self, image: np.ndarray) -> np.ndarray:
        """A full-resolution frame's aligned crop (the model's crop transform)."""
        from .align import warp_to_crop

        return warp_to_crop(image, self.M, self.crop_size)

    def warp_crop(self, wf: WarpFrame, image: np.ndarray) -> np.ndarray:
        """Any crop-aligned image (e.g. a generator's neutral rendering) moved by this frame's warp."""
        if wf.crop_map is None:
            raise ValueError("this WarpFrame was made without crop=True")
        return remap(image, *wf.crop_map)

    def render(self, wf: WarpFrame, residual: np.ndarray | None = None, *, fill_mouth_hole: bool = True,
               out: np.ndarray | None = None) -> np.ndarray:
        """The full-resolution output frame: the photo warped by ``wf``, the mouth interior filled
        where the mouth opened (``fill_mouth_hole``: dark, and the driver's own where ``wf`` has it), plus ``residual`` (``[R, R, 3]`` float, 0-255
        levels, in the warped crop's frame: what a generator adds to the warped crop) inside the
        face oval. Written into the next ring buffer (or ``out``) and returned."""
        from .align import warp_from_crop

        if out is None:
            out = self._buffers[self._next]
            self._next = (self._next + 1) % len(self._buffers)
        roi = out[self.y0:self.y1, self.x0:self.x1]
        remap(self.photo, wf.map_x, wf.map_y, out=roi)  # straight into the frame: no copy of the region
        if fill_mouth_hole and wf.hole_box is not None:
            fill_mouth(roi, wf.hole, self.colours, mouth_height(wf.mesh), wf.hole_box)
            if wf.mouth is not None:
                blend_interior(roi, wf.hole, wf.mouth[1], wf.mouth[0], wf.hole_box)
        if residual is not None:  # only over the moved face's box
            oval = wf.mesh[FACE_OVAL, :2] - (self.x0, self.y0)
            pad = 0.08 * float(np.ptp(oval[:, 1]))
            rh, rw = roi.shape[:2]
            bx0, by0 = (max(int(v), 0) for v in np.floor(oval.min(0) - pad))
            bx1, by1 = int(min(np.ceil(oval[:, 0].max() + pad), rw)), int(min(np.ceil(oval[:, 1].max() + pad), rh))
            if bx1 > bx0 and by1 > by0:
                d = warp_from_crop(np.asarray(residual, np.float32), self.M, (bx1 - bx0, by1 - by0),
                                   (self.x0 + bx0, self.y0 + by0))
                mask = remap(self._mask_src, wf.map_x[by0:by1, bx0:bx1], wf.map_y[by0:by1, bx0:bx1])
                box = roi[by0:by1, bx0:bx1]
                f = box.astype(np.float32)
                f += mask[..., None] * d
                np.clip(f + 0.5, 0, 255, out=f)
                box[...] = f.astype(np.uint8)
        return out
