"""Quest controller poses to :class:`HumanFrame` s: world axes, the wrist clutch, the grasp.

World axes
----------
Poses are converted from the Quest head frame into this project's world convention
(x forward, y left, z up, origin at the head) by the fixed rotation :data:`QUEST_TO_WORLD`::

    world_x = -quest_z,  world_y = -quest_x,  world_z = quest_y

applied as a change of basis on both sides, ``C @ T @ C.T`` with ``C = diag(QUEST_TO_WORLD, 1)``,
so a controller's own axes are also re-expressed as x forward (along the controller's pointing
direction), y left, z up: a controller held level and pointing forward has the identity
rotation. Because the app logs poses relative to the head, turning the head moves them; the
clutch below makes that harmless (re-centre by releasing and pressing again).

Wrist, clutch and grasp
-----------------------
The published ``wrist`` starts at the identity (palm down, fingers forward, at the origin). While
the clutch button (default ``RG``, the right grip button) is held, the wrist moves by the wrist
controller's motion since the press: translation added in the world frame, rotation applied as
a world-frame delta (``R_ctrl(t) @ R_ctrl(press).T @ R_wrist(press)``). While released the
wrist stays put, so the operator can re-centre. A tracking loss, a time gap or a rejected jump
releases the clutch, so the wrist never jumps when tracking resumes. ``keypoints`` are the
nominal human hand interpolated in joint space between the open hand and the fist by the grasp
value (default ``rightTrig``: 0 open, 1 fist).

A wrist-controller step over :data:`MAX_JUMP_M` between close samples is a glitch
(``jump``): dropped, at most :data:`MAX_JUMPS_IN_A_ROW` in a row, then the new position is
taken and the clutch re-anchored.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from devices.inputs.human_hand import DEFAULT_HAND, FIST_POSE, OPEN_POSE
from devices.inputs.quest.protocol import QuestSample
from devices.tick import HumanFrame

#: Rotation (3, 3) taking Quest/OpenXR head-frame axes (x right, y up, z back) to world axes
#: (x forward, y left, z up): ``v_world = QUEST_TO_WORLD @ v_quest``.
QUEST_TO_WORLD: Final[np.ndarray] = np.array(
    [
        [0.0, 0.0, -1.0],
        [-1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
    ]
)
QUEST_TO_WORLD.setflags(write=False)


#: A wrist-controller step larger than this between samples closer than GAP_S is a glitch (m).
MAX_JUMP_M: Final[float] = 0.2
#: Consecutive jumps rejected before a new position is accepted (and re-anchored).
MAX_JUMPS_IN_A_ROW: Final[int] = 3
#: A pause in the wrist controller's samples longer than this releases the clutch (s).
GAP_S: Final[float] = 0.25


def _orthonormalize(rot: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) nearest to ``rot`` (polar decomposition)."""
    u, _, vt = np.linalg.svd(rot)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1.0
        r = u @ vt
    return r


def quest_to_world(pose: np.ndarray) -> np.ndarray:
    """Convert a (4, 4) Quest head-frame pose to the world convention; see the module doc.

    Args:
        pose: (4, 4) pose in OpenXR axes (x right, y up, z back), metres.

    Returns:
        (4, 4) ``C @ pose @ C.T`` with ``C = diag(QUEST_TO_WORLD, 1)``, the rotation block
        re-orthonormalized (the app prints 6 significant digits).
    """
    pose = np.asarray(pose, dtype=float)
    out = np.eye(4)
    out[:3, :3] = _orthonormalize(QUEST_TO_WORLD @ pose[:3, :3] @ QUEST_TO_WORLD.T)
    out[:3, 3] = QUEST_TO_WORLD @ pose[:3, 3]
    return out


def grasp_keypoints(grasp: float) -> np.ndarray:
    """Keypoints (21, 3), metres, wrist frame, of the nominal hand closed by ``grasp``.

    Joint angles are interpolated linearly from ``OPEN_POSE`` (0) to ``FIST_POSE`` (1);
    ``grasp`` is clipped to [0, 1] (NaN reads as 0).
    """
    g = float(grasp)
    g = 0.0 if not math.isfinite(g) else min(max(g, 0.0), 1.0)
    return DEFAULT_HAND.keypoints(OPEN_POSE + g * (FIST_POSE - OPEN_POSE))


class WristClutch:
    """Relative wrist motion with a clutch.

    While engaged, the wrist moves by the controller's motion since engagement (translation in
    the world frame, rotation as a world-frame delta); while released it stays put.
    """

    def __init__(self, home: np.ndarray | None = None) -> None:
        """``home``: (4, 4) initial wrist pose (default identity)."""
        self._wrist = np.eye(4) if home is None else np.array(home, dtype=float)
        self._grab: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def wrist(self) -> np.ndarray:
        """Current wrist pose (4, 4), world frame, metres (a copy)."""
        return self._wrist.copy()

    @property
    def engaged(self) -> bool:
        return self._grab is not None

    def release(self) -> None:
        """Disengage; the next engaged update re-anchors (no jump)."""
        self._grab = None

    def update(self, engaged: bool, controller: np.ndarray | None) -> np.ndarray:
        """Advance one sample.

        Args:
            engaged: whether the clutch button is held.
            controller: (4, 4) controller pose in the world frame, metres, or None when not
                tracked (releases the clutch).

        Returns:
            the wrist pose (4, 4), world frame, metres.
        """
        if not engaged or controller is None:
            self._grab = None
            return self.wrist
        controller = np.asarray(controller, dtype=float)
        if self._grab is None:
            self._grab = (controller.copy(), self._wrist.copy())
            return self.wrist
        c0, w0 = self._grab
        wrist = np.eye(4)
        wrist[:3, :3] = _orthonormalize(controller[:3, :3] @ c0[:3, :3].T @ w0[:3, :3])
        wrist[:3, 3] = w0[:3, 3] + controller[:3, 3] - c0[:3, 3]
        self._wrist = wrist
        return self.wrist


class QuestFrameBuilder:
    """Turns :class:`QuestSample` s into :class:`HumanFrame` s (clutch, grasp, jump check).

    Not thread-safe; the device calls it from one thread at a time.
    """

    def __init__(self, clutch: str = "RG", grasp: str = "rightTrig", hand: str = "right") -> None:
        self.clutch_button = clutch
        self.grasp_button = grasp
        self.hand = hand
        self.clutch = WristClutch()
        self._last_pos: np.ndarray | None = None
        self._last_t: float | None = None
        self._jumps = 0

    def release(self) -> None:
        """Release the clutch and forget the last position (after a loop or a reconnect)."""
        self.clutch.release()
        self._last_pos = None
        self._last_t = None
        self._jumps = 0

    def engaged(self, buttons: dict[str, float]) -> bool:
        """Whether the clutch is held; ``clutch`` "" or "none" means always engaged."""
        if self.clutch_button in ("", "none"):
            return True
        return buttons.get(self.clutch_button, 0.0) >= 0.5

    def build(
        self, sample: QuestSample, t: float, seq: int
    ) -> tuple[HumanFrame | None, str | None]:
        """The frame for ``sample``.

        Args:
            sample: a parsed line (poses in the Quest head frame).
            t: arrival time (live) or due time (playback), seconds, on the device's clock.
            seq: the frame's sequence number.

        Returns:
            ``(frame, None)``: ``wrist`` (4, 4) and ``controllers`` (4, 4 each) in the world
            convention, ``keypoints`` (21, 3) m from the grasp value, ``confidence`` 0 when the
            wrist controller is not tracked; or ``(None, "jump")`` for a tracking glitch.
        """
        controllers = {
            name: quest_to_world(pose)
            for name, pose in (("right", sample.right), ("left", sample.left))
            if pose is not None
        }
        ctrl = controllers.get(self.hand)
        if ctrl is not None:
            gap = self._last_t is None or t - self._last_t > GAP_S
            if gap:
                self.clutch.release()
            elif (
                self._last_pos is not None
                and np.linalg.norm(ctrl[:3, 3] - self._last_pos) > MAX_JUMP_M
                and self._jumps < MAX_JUMPS_IN_A_ROW
            ):
                self._jumps += 1
                self.clutch.release()
                return None, "jump"
            if self._jumps:
                self.clutch.release()  # accepted a new position after jumps: re-anchor
            self._jumps = 0
            self._last_pos = ctrl[:3, 3].copy()
            self._last_t = t
        else:  # tracking lost: the clutch releases below; no jump check when it comes back
            self._last_pos = None
            self._last_t = None
            self._jumps = 0
        wrist = self.clutch.update(self.engaged(sample.buttons), ctrl)
        grasp = 0.0 if self.grasp_button in ("", "none") else sample.buttons.get(self.grasp_button)
        frame = HumanFrame(
            keypoints=grasp_keypoints(grasp or 0.0),
            wrist=wrist,
            t=float(t),
            seq=seq,
            confidence=1.0 if ctrl is not None else 0.0,
            buttons=dict(sample.buttons),
            controllers=controllers,
        )
        return frame, None
