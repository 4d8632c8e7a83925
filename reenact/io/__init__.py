"""Reading and writing videos and image folders."""
from reenact.io.video import (
    Frame,
    VideoReader,
    VideoWriter,
    is_image_path,
    is_video_path,
    list_images,
    read_all,
)

__all__ = ["Frame", "VideoReader", "VideoWriter", "is_image_path", "is_video_path",
           "list_images", "read_all"]
