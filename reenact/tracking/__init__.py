"""Face tracking with MediaPipe Face Landmarker."""
from .landmarker import BLENDSHAPE_INDEX, BLENDSHAPE_NAMES, NUM_LANDMARKS, Face, FaceTracker, FrameTracking
from .model_file import cache_dir, resolve_face_landmarker

__all__ = ["BLENDSHAPE_INDEX", "BLENDSHAPE_NAMES", "NUM_LANDMARKS", "Face", "FaceTracker", "FrameTracking",
           "cache_dir", "resolve_face_landmarker"]
