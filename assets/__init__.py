"""Hand specs, objects, bundled clips and small checkpoints; the project's lowest layer."""

from pathlib import Path

from assets.hands import HAND_SPECS, ROBOT_KEYPOINT_NAMES, Hand, HandModelError, HandSpec, load_hand
from assets.objects import OBJECTS, ObjectSpec

ASSETS_DIR = Path(__file__).resolve().parent
CLIPS_DIR = ASSETS_DIR / "clips"
#: The shipped checkpoints, a folder per learned component (``dexgen``, ``modex``, ``rl``).
CHECKPOINTS_DIR = ASSETS_DIR / "checkpoints"
DEMO_CLIP = CLIPS_DIR / "demo.npz"

__all__ = [
    "ASSETS_DIR",
    "CHECKPOINTS_DIR",
    "CLIPS_DIR",
    "DEMO_CLIP",
    "HAND_SPECS",
    "OBJECTS",
    "ROBOT_KEYPOINT_NAMES",
    "Hand",
    "HandModelError",
    "HandSpec",
    "ObjectSpec",
    "load_hand",
]
