"""Every built-in gesture made by the ``modex`` controller on the simulated hands, rendered.

    .venv/bin/python bench/modex_gestures.py --hands leap allegro --out docs/modex_gestures.png

For each hand and gesture: a session on the simulated hand with the ``modex`` controller
(shipped models, sequential MPC at 20 Hz) and the goal set to the gesture; after
``--seconds`` the hand's measured fingertips are scored with the gesture's cost and compared
with the open hand's. Prints a table and writes one image: a grid, a row per hand, the open
hand first.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402


def make_gesture(
    hand: str, goal: str, seconds: float, wrist: str = "thumb_down"
) -> tuple[np.ndarray, object, dict]:
    """Run the gesture; (final sim state, the session's robot, last info)."""
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    cfg = session_config(
        hand=hand, device="replay", controller="modex", controller_options={"goal": goal},
        wrist=wrist, fast=True,
    )  # fmt: skip
    session = Session(cfg)
    last = []
    session.subscribe(last.append)
    with session:
        session.run(seconds)
    rec = last[-1]
    return rec.sim_state, session.robot, rec


def render(robot: object, state: np.ndarray, width: int, height: int) -> np.ndarray:
    import mujoco

    from teleop_app.video import scene_option

    data = mujoco.MjData(robot.model)
    robot.load_state(state, data)
    with mujoco.Renderer(robot.model, height, width) as r:
        r.update_scene(data, camera="front", scene_option=scene_option(robot))
        return r.render()


def main(argv: list[str] | None = None) -> int:
    import torch
    from PIL import Image, ImageDraw

    from assets.hands import FINGERS
    from controllers import CONTROLLERS
    from controllers.modex import GESTURES, TIP_INDEX
    from controllers.modex.gestures import gesture_cost

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hands", nargs="+", default=["leap", "allegro"])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", default="out/modex/gestures.png")
    p.add_argument("--size", type=int, default=240, help="tile width and height, px")
    p.add_argument("--wrist", default="thumb_down", help="wrist (palm towards the camera)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    rows = []
    print("| hand | gesture | cost, open hand (cm^2) | cost, made (cm^2) | ratio |")
    print("|---|---|---|---|---|")
    for hand in args.hands:
        tiles = []
        open_state, robot, _ = make_gesture(
            hand, "follow operator", 0.05, args.wrist
        )  # one tick: open
        tiles.append(("open", render(robot, open_state, args.size, args.size)))
        open_tips = CONTROLLERS.make("modex", hand=hand).open_tips  # what "extended" means
        for goal in GESTURES:
            state, robot, rec = make_gesture(hand, goal, args.seconds, args.wrist)
            cost = gesture_cost(goal, tuple(FINGERS), open_tips)
            tips = np.asarray(rec.state.keypoints, dtype=np.float32)[TIP_INDEX]
            made = float(cost(torch.as_tensor(tips.reshape(1, 1, -1))))
            at_open = float(cost(torch.as_tensor(open_tips.reshape(1, 1, -1))))
            print(
                f"| {hand} | {goal} | {at_open * 1e4:.2f} | {made * 1e4:.2f} | "
                f"{made / max(at_open, 1e-12):.3f} |"
            )
            tiles.append((goal, render(robot, state, args.size, args.size)))
        rows.append((hand, tiles))
    s = args.size
    grid = Image.new("RGB", (s * len(rows[0][1]), s * len(rows)), "white")
    draw = ImageDraw.Draw(grid)
    for r, (hand, tiles) in enumerate(rows):
        for c, (name, img) in enumerate(tiles):
            grid.paste(Image.fromarray(img), (c * s, r * s))
            draw.text((c * s + 6, r * s + 6), f"{hand}: {name}", fill=(255, 255, 255))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
