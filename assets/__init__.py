"""Hand specs, objects, bundled clips and small checkpoints; the project's lowest layer."""

from pathlib import Path

from assets.hands import HAND_SPECS, KEYPOINT_NAMES, Hand, HandModelError, HandSpec, load_hand
from assets.objects import OBJECTS, ObjectSpec

ASSETS_DIR = Path(__file__).resolve().parent
CLIPS_DIR = ASSETS_DIR / "clips"
DEMO_CLIP = CLIPS_DIR / "demo.npz"

__all__ = [
    "ASSETS_DIR",
    "CLIPS_DIR",
    "DEMO_CLIP",
    "HAND_SPECS",
    "KEYPOINT_NAMES",
    "OBJECTS",
    "Hand",
    "HandModelError",
    "HandSpec",
    "ObjectSpec",
    "load_hand",
]
