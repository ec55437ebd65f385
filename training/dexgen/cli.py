"""``dexteleop train dexgen`` (argparse wiring, registered in :data:`training.commands.TRAIN`;
torch is imported only when it runs).

Multi-GPU (or multi-process CPU) training::

    torchrun --nproc_per_node 8 -m training.dexgen.train --data PATH --scale paper
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.commands import TRAIN

#: Where ``train dexgen`` puts a run when --out is not given.
DEFAULT_RUNS = Path("out/dexgen")
SCALE_NAMES = ("smoke", "demo", "paper")
SIZE_NAMES = ("paper", "demo", "smoke")


def add_train_arguments(p: Any) -> None:
    p.add_argument("--hand", default="leap")
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="dataset folder(s) from 'dexteleop data generate' (several: read as one)",
    )
    p.add_argument("--scale", choices=SCALE_NAMES, default="demo")
    p.add_argument("--out", help="run folder (default out/dexgen/HAND_SCALE)")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the scale's)")
    p.add_argument("--batch", type=int, help="transitions per step and process")
    p.add_argument("--size", choices=SIZE_NAMES, help="model size (default: the scale's)")
    p.add_argument("--minutes", type=float, help="stop (and save) after this long")
    p.add_argument("--horizon", type=int, help="future steps T of a motion (default 2)")
    p.add_argument("--history", type=int, help="proprioception steps in the state (default 4)")
    p.add_argument(
        "--held-only",
        action="store_true",
        help="train on the episodes that kept the object only (not those ending in a drop)",
    )
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--no-resume", action="store_true", help="start over")
    p.add_argument("--ship", action="store_true", help="copy dexgen.pt into assets/")


def run_from_args(args: Any) -> int:
    import dataclasses
    import shutil

    from controllers.dexgen.models import shipped_checkpoint
    from training.dexgen.train import SCALES, _dist_info, train

    s = SCALES[args.scale]
    changes: dict[str, Any] = {"seed": args.seed}
    for name, attr in (("steps", "steps"), ("batch", "batch"), ("size", "size"), ("lr", "lr"),
                       ("minutes", "max_minutes"), ("horizon", "horizon"),
                       ("history", "history")):  # fmt: skip
        v = getattr(args, name)
        if v is not None:
            changes[attr] = v
    if args.held_only:
        changes["held_only"] = True
    s = dataclasses.replace(s, **changes)
    out = Path(args.out or DEFAULT_RUNS / f"{args.hand}_{args.scale}")
    res = train(
        args.data,
        out,
        hand=args.hand,
        settings=s,
        resume=not args.no_resume,
        device=args.device,
        threads=args.threads,
    )
    if _dist_info()[0] != 0:
        return 0
    last = res.report["val"][-1] if res.report["val"] else {}
    print(
        f"DexGen {args.hand}: {res.steps}/{s.steps} steps in {res.report['seconds']:.0f} s; "
        + ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "step")
        + f"\nmodel: {res.checkpoint}"
    )
    if args.ship:
        if res.steps < s.steps:
            print("not shipped: training is not finished (run again to resume)")
            return 1
        dst = shipped_checkpoint(args.hand)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(res.checkpoint, dst)
        print(f"shipped: {dst}")
    return 0


TRAIN.register(
    "dexgen",
    help="DexGen: the keypoint-motion diffusion prior and inverse dynamics",
    add_arguments=add_train_arguments,
    run=run_from_args,
    user_errors=(FileNotFoundError, ValueError),
)
