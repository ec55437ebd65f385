"""How much a dynamics model's next-angle prediction moves with each of the last targets.

    .venv/bin/python bench/dexndm_sensitivity.py --ndm NDM.pt [...] --data DATASET [...] \\
        [--windows 2000] [--json PATH]

For each model and dataset (held-out windows: the last 10 % of segments), the mean absolute
own-joint derivative d q_{t+1} / d a_{t-k} for lags k = 0, 1, 2 (rad per rad), over joints,
and the thumb's at lag 0. A hand with a control step of latency cannot answer the target sent
at t before t + 2, so a model that learned it puts the weight on lag 1, one trained in a
simulation without latency on lag 0: what a residual trained through the model can act on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def sensitivity(model, hist_q: np.ndarray, hist_a: np.ndarray) -> np.ndarray:
    """(n, W) mean |d q_next[j] / d a[lag, j]|, the window's oldest target first."""
    hq = torch.as_tensor(hist_q)
    ha = torch.as_tensor(hist_a).requires_grad_(True)
    out = model(hq, ha)
    rows = []
    for j in range(out.shape[1]):
        (g,) = torch.autograd.grad(out[:, j].sum(), ha, retain_graph=True)
        rows.append(g[:, :, j].abs().mean(0).numpy())
    return np.array(rows)


def main() -> int:
    from controllers.dexndm.ndm import load_ndm
    from training.dexndm.ndm_train import load_windows

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ndm", nargs="+", required=True)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--windows", type=int, default=2000)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(1)
    records = []
    for path in args.ndm:
        model, _ = load_ndm(path)
        for data in args.data:
            _, val, _ = load_windows([data], model.cfg.window, 0.1)
            rng = np.random.default_rng(0)
            idx = rng.choice(len(val), min(args.windows, len(val)), replace=False)
            r = sensitivity(model, val.hist_q[idx], val.hist_a[idx])
            rec = {
                "ndm": path,
                "data": data,
                "windows": len(idx),
                "d_dat_lag0": round(float(r[:, -1].mean()), 4),
                "d_dat_lag1": round(float(r[:, -2].mean()), 4),
                "d_dat_lag2": round(float(r[:, -3].mean()), 4),
                "thumb_lag0": round(float(r[12:, -1].mean()), 4),
            }
            records.append(rec)
            print(json.dumps(rec), flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"command": " ".join(sys.argv), "records": records}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
