"""Offscreen video of a finished run (``MUJOCO_GL=egl`` on a headless machine).

Rendering happens after the run from the simulator states the session kept, never inside
the control loop. The commanded keypoints are drawn as translucent green ghosts, the
hand's own keypoints as small orange dots.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np

from assets.hands import Hand
from devices.robots.base import Robot
from devices.robots.scene import HAND_PREFIX, build_scene, site_names
from devices.robots.sim import SimHand

log = logging.getLogger(__name__)

GHOST_RGBA = np.array([0.1, 0.9, 0.3, 0.45], dtype=np.float32)
GHOST_RADIUS_M = 0.008


def scene_option(robot: Robot) -> mujoco.MjvOption:
    """Collision geometry always; heavy visual meshes hidden (they cost ~400 ms a frame)."""
    opt = mujoco.MjvOption()
    spec = robot.hand.spec
    opt.geomgroup[spec.collision_group] = 1
    if spec.heavy_visuals:
        opt.geomgroup[spec.visual_group] = 0
    opt.sitegroup[5] = 1  # our keypoint sites
    return opt


class MeasuredScene:
    """Any hand backend drawn from its measured joints (``HandState.q``): the hand's scene
    (palm up, no object) with its joints set, for backends without a simulator state; with
    an ``arm`` (``assets.arms``), the hand on that arm, drawn from the arm's measured joints
    too."""

    def __init__(self, hand: Hand, arm: str | None = None) -> None:
        self.model = build_scene(hand, wrist="palm_up", arm=arm).compile()
        m = self.model
        self._qadr = np.array(
            [m.jnt_qposadr[m.joint(HAND_PREFIX + j).id] for j in hand.joint_names]
        )
        self._arm_qadr = None
        if arm is not None:
            from assets.arms import arm_spec
            from devices.robots.scene import ARM_PREFIX

            names = arm_spec(arm).joint_names
            self._arm_qadr = np.array([m.jnt_qposadr[m.joint(ARM_PREFIX + j).id] for j in names])

    def load(self, q: np.ndarray, data: mujoco.MjData, arm_q: np.ndarray | None = None) -> None:
        """Put the measured joints ``q`` (n,) (and the arm's, ``arm_q``) into ``data`` and
        recompute positions."""
        data.qpos[self._qadr] = q
        if self._arm_qadr is not None and arm_q is not None:
            data.qpos[self._arm_qadr] = arm_q
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_camlight(self.model, data)


def add_ghosts(
    scene: mujoco.MjvScene,
    palm_pos: np.ndarray,
    palm_rot: np.ndarray,
    keypoints_palm: np.ndarray | None,
) -> None:
    """Append commanded keypoints (palm frame, (K, 3)) to ``scene`` as translucent spheres."""
    if keypoints_palm is None:
        return
    world = palm_pos + np.asarray(keypoints_palm) @ palm_rot.T
    for p in world:
        if scene.ngeom >= scene.maxgeom:
            return
        mujoco.mjv_initGeom(
            scene.geoms[scene.ngeom],
            mujoco.mjtGeom.mjGEOM_SPHERE,
            np.array([GHOST_RADIUS_M, 0.0, 0.0]),
            p,
            np.eye(3).reshape(-1),
            GHOST_RGBA,
        )
        scene.ngeom += 1


def render_video(
    robot: SimHand,
    states: Sequence[np.ndarray],
    commands: Sequence[np.ndarray | None],
    path: str | Path,
    *,
    fps: float,
    width: int = 640,
    height: int = 480,
    camera: str = "front",
) -> int:
    """Render ``states`` (from ``SimHand.sim_state``) to an mp4 at ``path``.

    Returns the number of frames written.
    """
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = mujoco.MjData(robot.model)
    opt = scene_option(robot)
    palm_site = robot.model.site(site_names()[0]).id
    n = 0
    with mujoco.Renderer(robot.model, height, width) as renderer:
        writer = imageio.get_writer(
            str(path),
            fps=fps,
            codec="libx264",
            quality=7,
            macro_block_size=16,
            ffmpeg_log_level="error",
        )
        try:
            for state, cmd in zip(states, commands, strict=True):
                robot.load_state(state, data)
                renderer.update_scene(data, camera=camera, scene_option=opt)
                add_ghosts(
                    renderer.scene,
                    data.site_xpos[palm_site],
                    data.site_xmat[palm_site].reshape(3, 3),
                    cmd,
                )
                writer.append_data(renderer.render())
                n += 1
        finally:
            writer.close()
    log.info("wrote %d frames to %s", n, path)
    return n
