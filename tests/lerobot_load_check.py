"""Load a dexteleop dataset with lerobot's own LeRobotDataset (run with a python that has
lerobot 0.4.x; dexteleop cannot depend on it). Prints one JSON line; exits non-zero on failure.

    /path/to/lerobot-venv/bin/python tests/lerobot_load_check.py DATASET
"""

import json
import sys

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

root = sys.argv[1]
ds = LeRobotDataset("local/dexteleop", root=root)
last = ds[len(ds) - 1]
sub = LeRobotDataset(
    "local/dexteleop", root=root, episodes=[1], delta_timestamps={"action": [0.0, 0.05]}
)
item = sub[len(sub) - 1]
print(
    json.dumps(
        {
            "frames": len(ds),
            "episodes": ds.num_episodes,
            "fps": ds.fps,
            "task": last["task"],
            "state_shape": list(last["observation.state"].shape),
            "action_dtype": str(last["action"].dtype),
            "subset_frames": len(sub),
            "action_is_pad": item["action_is_pad"].tolist(),
            "has_stats": ds.meta.stats is not None,
            "torch": torch.__version__,
        }
    )
)
