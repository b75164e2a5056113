"""Fixtures of the data tests: small image folders written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionkit.testing import save_image, solid

# GIF and palette colours are web-safe (multiples of 51): PIL's default palette holds them
# exactly, so nothing is dithered.
# Solid-colour images of the folder fixture: relative path, source (height, width), colour,
# save mode, and how exactly the colour must survive decoding (JPEG is lossy).
# Sources are non-square and differ from the target size.
FOLDER_IMAGES = [
    ("cats/red.png", (30, 50), (200, 30, 60), None, 0),
    ("cats/photo.jpg", (40, 28), (30, 90, 220), None, 4),
    ("cats/UPPER.JPEG", (33, 45), (250, 250, 20), None, 4),
    ("cats/picture.bmp", (21, 37), (10, 160, 40), None, 0),
    ("cats/anim.gif", (26, 18), (255, 102, 0), "P", 0),
    ("cats/gray.png", (25, 35), (77, 77, 77), "L", 0),
    ("dogs/rgba.png", (31, 22), (10, 220, 130), "RGBA", 0),
    ("dogs/d1.jpg", (48, 64), (120, 20, 160), None, 4),
    ("dogs/d2.bmp", (19, 29), (160, 160, 255), None, 0),
    ("dogs/nested/deep.png", (27, 41), (0, 0, 0), None, 0),
    ("dogs/d3.gif", (40, 17), (255, 255, 255), "P", 0),
]


@pytest.fixture
def image_tree(tmp_path: Path) -> tuple[Path, dict[tuple[int, int, int], tuple[str, int]]]:
    """A two-class folder (cats, dogs) of solid-colour images in every format.

    Also holds things `image_folder` must ignore: a hidden file and a hidden folder full of
    images, a text file, a Markdown file and an image with an unsupported extension.

    Returns:
        (root, {colour: (class name, tolerance)}).
    """
    root = tmp_path / "train"
    expected = {}
    for relative, (height, width), colour, mode, tolerance in FOLDER_IMAGES:
        save_image(root / relative, solid(height, width, colour), mode)
        expected[colour] = (relative.split("/")[0], tolerance)
    # An animated GIF whose *second* frame has another colour: only frame one counts.
    frames = [Image.fromarray(solid(26, 18, (255, 102, 0))).convert("P"),
              Image.fromarray(solid(26, 18, (0, 0, 255))).convert("P")]
    frames[0].save(root / "cats/anim.gif", save_all=True, append_images=frames[1:])
    # Things that must be ignored.
    save_image(root / "cats/.hidden.png", solid(10, 10, (1, 2, 3)))
    save_image(root / ".thumbnails/t.png", solid(10, 10, (4, 5, 6)))
    save_image(root / "dogs/picture.tiff", solid(10, 10, (7, 8, 9)))
    (root / "cats/notes.txt").write_text("not an image")
    (root / "dogs/README.md").write_text("# dogs")
    return root, expected


@pytest.fixture
def two_class_tree(tmp_path: Path):
    """Factory: writes `per_class` noisy PNGs into each of `classes` under tmp_path/name."""

    def build(name: str = "set", classes=("a", "b"), per_class: int = 6, size=(20, 30),
              seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        root = tmp_path / name
        for class_name in classes:
            for index in range(per_class):
                pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                save_image(root / class_name / f"{index:03d}.png", pixels)
        return root

    return build
