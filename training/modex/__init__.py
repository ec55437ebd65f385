"""MoDex (neural internal models + bidirectional CEM planning): data, models, planners."""

#: Names shared with the controller (defined with it: controllers never import training).
from controllers.modex import GESTURES, MODEX_HANDS, SETTINGS  # noqa: F401

# exploration sizes used for the shipped checkpoints (a few minutes per hand on 2 cores)
DEFAULT_SAMPLES = {"quasi-static": 40_000, "sequential": 200_000}


def add_train_arguments(p: object) -> None:
    """The training options of ``dexteleop train modex`` (argparse; no torch imported)."""
    p.add_argument("--hand", choices=MODEX_HANDS, required=True)  # type: ignore[attr-defined]
    add = p.add_argument  # type: ignore[attr-defined]
    add("--setting", choices=SETTINGS, default="quasi-static")
    add(
        "--samples",
        type=int,
        default=None,
        help="exploration samples (default: 40000 quasi-static, 200000 sequential transitions)",
    )
    add("--data", help="train on this saved exploration dataset instead of exploring")
    add("--steps", type=int, default=None, help="gradient steps per model (default 3000)")
    add("--batch", type=int, default=None, help="batch size (default 256)")
    add("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    add("--hidden", default=None, help="hidden layer widths (default 256,256,256)")
    add("--seed", type=int, default=0)
    add("--threads", type=int, default=2)
    add(
        "--physics-model",
        default=None,
        metavar="NAME",
        help="the hand's simulated physics to explore (assets.physics: 'servo' or "
        "'menagerie'; default: the project's default physics); ignored with --data",
    )
    add("--out", help="checkpoint folder (default assets/checkpoints/modex)")
