"""A picture (and optionally a video) of a policy turning an object about a commanded axis.

    .venv/bin/python bench/rotation_picture.py --checkpoint assets/checkpoints/rl/rotate_leap.pt \
        --axis z+ --object cube --out docs/rotation_leap_cube_z.png [--video docs/x.mp4]
    .venv/bin/python bench/rotation_picture.py --mpc --set start=palm rest_q=... --out docs/x.png

``--mpc [KEY=VALUE ...]`` shows the sampling-MPC expert (``training.rl.mpc``) instead of a
policy; ``--set KEY=VALUE`` sets rotate task settings (over the policy's).

One episode in the ``rotate`` task (randomisation on, as in training): ``--frames`` frames
evenly spaced over ``--seconds``, side by side, each labelled with the time and the angle
turned about the axis so far; the commanded axis is drawn as a red arrow through the
object, gravity as the blue arrow (the image is turned so that gravity points down: palm up
is seen from above). The first frame is the start grasp.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hand", default="leap")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--checkpoint", help="rotate policy.pt or a generalist")
    who.add_argument("--mpc", nargs="*", metavar="KEY=VALUE", help="the sampling-MPC expert")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="task settings")
    p.add_argument("--axis", default="z+")
    p.add_argument("--object", default="cube")
    p.add_argument("--wrist", default="palm_up")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/rotation.png")
    p.add_argument("--video", help="also write the episode as an .mp4")
    args = p.parse_args(argv)
    import imageio.v2 as imageio
    import mujoco
    from PIL import Image, ImageDraw

    from training.envs import make_env
    from training.rl.cli import task_settings
    from training.rl.distill import rotation_policy, rotation_run_settings
    from training.rl.evaluate import DEMO_OBJECTS, _Renderer

    over, start = {}, "grasp"
    if args.checkpoint:
        over, trained_start = rotation_run_settings(args.checkpoint)
        start = trained_start or start
    over.update(task_settings("rotate", args.set))
    over.setdefault("start", start)
    env = make_env(
        "rotate",
        hand=args.hand,
        num_envs=1,
        nthread=1,
        seed=args.seed,
        episode_s=args.seconds + 1.0,  # no time-out (and reset) inside the picture
        axes=(args.axis,),
        wrists=(args.wrist,),
        families=(args.object,),
        **{**DEMO_OBJECTS, **over},
    )
    if args.mpc is not None:
        from devices.spec import typed_options
        from training.rl.mpc import MPCSettings, RotationMPC

        raw = dict(item.partition("=")[::2] for item in args.mpc)
        mpc = RotationMPC(env, MPCSettings(**typed_options("MPC", MPCSettings, raw)))
    else:
        policy = rotation_policy(args.checkpoint, env)
    env.reset()
    obs = env.get_observations()
    ren = _Renderer(env, width=400, height=360)
    steps = round(args.seconds / env.dt)
    keep = set(np.linspace(0, steps, args.frames).round().astype(int).tolist())
    frames, video, turned = [], [], 0.0

    def shot(t: int) -> np.ndarray:
        img = ren.frame(_axis_arrow(env, mujoco))
        if (env.gravity[0] @ env.palm_rot.T)[2] > 0:  # gravity up the world: turn the image
            img = np.ascontiguousarray(img[::-1, ::-1])  # so that "down" is down
        im = Image.fromarray(img)
        ImageDraw.Draw(im).text(
            (8, 8), f"t = {t * env.dt:4.1f} s   turned {np.degrees(turned):5.0f} deg", fill="white"
        )
        return np.asarray(im)

    for t in range(steps + 1):
        if t in keep:
            frames.append(shot(t))
        if args.video:
            video.append(shot(t))
        if t == steps:
            break
        if args.mpc is not None:
            obs, _, _, _ = env.step_targets(mpc.plan())
        else:
            with torch.inference_mode():
                a = np.clip(policy(obs).numpy().astype(float), -1, 1)
            obs, _, _, _ = env.step(torch.as_tensor(a, dtype=torch.float32))
        turned += float(np.sum(env.last_omega[0] * env.last_axis[0]) * env.dt)
        if env.last_terminated[0]:
            print(f"the object dropped at {(t + 1) * env.dt:.1f} s")
            frames.append(shot(t + 1))
            break
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(args.out, np.concatenate(frames, axis=1))
    print(f"{args.out}: {len(frames)} frames, {np.degrees(turned):.0f} deg about {args.axis}")
    if args.video:
        imageio.mimwrite(args.video, video, fps=round(1 / env.dt), macro_block_size=1)
        print(f"{args.video}: {len(video)} frames")
    return 0


def _axis_arrow(env, mujoco):
    """A red arrow along the commanded axis through the object (world frame)."""
    pos, _ = env.obj_pose()
    start = pos[0] - 0.05 * (env.palm_rot @ env.axis[0])
    end = pos[0] + 0.07 * (env.palm_rot @ env.axis[0])

    def draw(scene):
        if scene.ngeom >= scene.maxgeom:
            return
        g = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(
            g,
            mujoco.mjtGeom.mjGEOM_ARROW,
            np.zeros(3),
            np.zeros(3),
            np.zeros(9),
            np.array([1.0, 0.15, 0.1, 1.0], np.float32),
        )
        mujoco.mjv_connector(g, mujoco.mjtGeom.mjGEOM_ARROW, 0.003, start, end)
        scene.ngeom += 1

    return draw


if __name__ == "__main__":
    raise SystemExit(main())
