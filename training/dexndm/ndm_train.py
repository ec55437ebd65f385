"""Train a neural dynamics model (``controllers.dexndm.ndm``) on hand trajectories.

DexNDM pretrains its dynamics model on simulation data and fine-tunes it on the chaos-box
data of the real hand (Sec. 3.3): ``dexteleop train ndm --data SIM_ROLLOUTS`` and then
``dexteleop train ndm --data CHAOS_BOX --init PRETRAINED``. Both kinds (joint-wise, whole-
hand) train here on the same windows, so that they compare on the same data.

A window is rows ``t-W+1..t`` of a segment's ``q`` and ``target`` (the target sent at row t
moves the hand to row t+1) and its label ``q[t+1]``. The last ``val_fraction`` of each
dataset's segments validate. The loss is the mean squared normalised step; the reports give
the next-angle error in radians (RMSE and mean absolute, over joints and windows) beside the
"hold" baseline (``q_{t+1} = q_t``). A model with ``effort`` (``--effort``) also learns the
actuators' torques at t+1 from data that has them (``effort``; its loss: the mean squared
normalised torque, added), and the reports give its error in N m.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assets import checkpoint
from controllers.dexndm.ndm import NDMConfig, NeuralDynamics, load_ndm, save_ndm
from training.datagen.dataset import iter_segments, read_manifest, require_optional_field

log = logging.getLogger(__name__)

#: What to do about data without the actuators' torques (a model with effort needs them).
EFFORT_HINT = (
    "the torques are recorded by data generate --task rotate and by data chaos-box on a "
    "hand that measures them (record the data again)"
)

#: The training state beside a run's model (resumable).
STATE_FORMAT = "dexteleop-ndm-train/1"


@dataclass
class Windows:
    """Training windows: (N, W, n) angle and target histories and (N, n) next angles (and
    next torques, for a model with effort)."""

    hist_q: np.ndarray
    hist_a: np.ndarray
    q_next: np.ndarray
    effort_next: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.q_next)

    def take(self, idx: np.ndarray) -> Windows:
        eff = None if self.effort_next is None else self.effort_next[idx]
        return Windows(self.hist_q[idx], self.hist_a[idx], self.q_next[idx], eff)


def segment_windows(
    q: np.ndarray, target: np.ndarray, window: int, effort: np.ndarray | None = None
) -> Windows:
    """Every window of one segment (rows t = W-1 .. len-2)."""
    T = len(q)
    if window + 1 > T:  # none; empty arrays of the segment's dtype (a concatenation keeps it)
        n = q.shape[1]
        z = np.zeros((0, window, n), dtype=q.dtype)
        e = None if effort is None else np.zeros((0, n), dtype=q.dtype)
        return Windows(z, z.copy(), np.zeros((0, n), dtype=q.dtype), e)
    idx = np.arange(window - 1, T - 1)[:, None] + np.arange(-window + 1, 1)[None, :]
    nxt = idx[:, -1] + 1
    return Windows(q[idx], target[idx], q[nxt], None if effort is None else effort[nxt])


def load_windows(
    roots: list[str | Path],
    window: int,
    val_fraction: float = 0.1,
    max_segments: int | None = None,
    effort: bool = False,
) -> tuple[Windows, Windows, list[dict]]:
    """(train, validation, each dataset's summary) windows of datasets (the last
    ``val_fraction`` of each one's segments validate). Segments with NaN rows are skipped.
    ``effort``: with the next torques (datasets without ``effort`` are refused)."""
    train, val, summaries = [], [], []
    fields = ("q", "target") + (("effort",) if effort else ())
    for root in roots:
        if effort:
            require_optional_field(root, "effort", EFFORT_HINT)
        segs = [s for s in iter_segments(root, fields)]
        segs = [s for s in segs if all(np.isfinite(s[f]).all() for f in fields)]
        if max_segments is not None:
            segs = segs[:max_segments]
        if not segs:
            raise ValueError(f"{root}: no segment to train on")
        n_val = max(1, round(len(segs) * val_fraction)) if len(segs) > 1 else 0
        for k, s in enumerate(segs):
            eff = s["effort"].astype(np.float32) if effort else None
            w = segment_windows(
                s["q"].astype(np.float32), s["target"].astype(np.float32), window, eff
            )
            (val if k >= len(segs) - n_val else train).append(w)
        m = read_manifest(root) or {}
        meta = m.get("meta", {})
        summaries.append(
            {
                "path": str(root),
                "segments": len(segs),
                "rows": int(sum(len(s["q"]) for s in segs)),
                "task": meta.get("task"),
                "hand": meta.get("hand"),
                "robot": meta.get("robot"),
                "physics": (meta.get("physics") or {}).get("name"),
                "fingerprint": checkpoint.fingerprint(m.get("chunks", []), m.get("rows")),
            }
        )

    def cat(ws: list[Windows]) -> Windows:
        names = ("hist_q", "hist_a", "q_next") + (("effort_next",) if effort else ())
        return Windows(*(np.concatenate([getattr(w, f) for w in ws]) for f in names))

    train_w = cat(train)
    val_w = cat(val) if val else train_w.take(np.arange(0))
    return train_w, val_w, summaries


@torch.no_grad()
def errors(model: NeuralDynamics, w: Windows, batch: int = 8192) -> dict[str, float]:
    """Next-angle error of ``model`` on windows ``w`` (rad) and the hold baseline's (and,
    for a model with effort, its torque error, N m)."""
    preds, effs = [], []
    for i in range(0, len(w), batch):
        q, e = model.predict(
            torch.as_tensor(w.hist_q[i : i + batch]), torch.as_tensor(w.hist_a[i : i + batch])
        )
        preds.append(q)
        if e is not None:
            effs.append(e)
    p = torch.cat(preds).numpy() if preds else np.zeros_like(w.q_next)
    e = p - w.q_next
    hold = w.hist_q[:, -1, :] - w.q_next
    out = {
        "rmse_rad": float(np.sqrt(np.mean(e**2))) if e.size else float("nan"),
        "mae_rad": float(np.mean(np.abs(e))) if e.size else float("nan"),
        "hold_rmse_rad": float(np.sqrt(np.mean(hold**2))) if hold.size else float("nan"),
        "windows": len(w),
    }
    if model.cfg.effort and w.effort_next is not None:
        de = torch.cat(effs).numpy() - w.effort_next if effs else np.zeros(0)
        out["effort_rmse_nm"] = float(np.sqrt(np.mean(de**2))) if de.size else float("nan")
    return out


@dataclass
class NDMTrainConfig:
    """Optimisation settings."""

    epochs: int = 30
    batch: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    threads: int | None = None
    #: use only the first N trajectories of each dataset (data-size ablations)
    max_segments: int | None = None
    model: NDMConfig = field(default_factory=NDMConfig)


def train_ndm(
    data: list[str | Path],
    out: str | Path,
    cfg: NDMTrainConfig,
    *,
    hand: str = "leap",
    init: str | Path | None = None,
    progress: bool = False,
    resume: bool = True,
) -> dict[str, Any]:
    """Train (or, with ``init``, fine-tune) a dynamics model; writes ``out`` (the model) and
    ``out`` + ``.state`` (resumable). Returns the report (also in the model's meta)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state_path = out.with_suffix(out.suffix + ".state")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    init_meta: dict[str, Any] = {}
    if init is not None:
        model, init_meta = load_ndm(init, hand=hand, kind=cfg.model.kind)
        cfg.model = model.cfg
    else:
        model = NeuralDynamics(cfg.model)
    train, val, summaries = load_windows(
        list(data), cfg.model.window, cfg.val_fraction, cfg.max_segments, cfg.model.effort
    )
    if len(train) == 0:
        raise ValueError("no training windows (segments shorter than the window?)")
    if init is None:
        model.fit_normalizers(train.hist_q, train.hist_a, train.q_next, train.effort_next)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    curve: list[dict] = []
    start_epoch, seconds = 0, 0.0
    if resume and state_path.exists():
        ck = checkpoint.load(state_path, format=STATE_FORMAT, what="NDM training state")
        checkpoint.load_weights(model, ck["model"], ck)
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start_epoch, curve, seconds = ck["epoch"], ck["curve"], ck["seconds"]
        rng = np.random.default_rng([cfg.seed, start_epoch])
        log.info("resumed %s at epoch %d", state_path, start_epoch)
    before = errors(model.eval(), val)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, initial=start_epoch, desc=f"NDM {cfg.model.kind}", unit="ep")
    hq = torch.as_tensor(train.hist_q)
    ha = torch.as_tensor(train.hist_a)
    qn = torch.as_tensor(train.q_next)
    en = None if train.effort_next is None else torch.as_tensor(train.effort_next)
    samples = 0
    t_fit = 0.0
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.as_tensor(rng.permutation(len(train)))
        total = 0.0
        for i in range(0, len(perm), cfg.batch):
            b = perm[i : i + cfg.batch]
            target = model.out_norm(qn[b] - hq[b][:, -1, :])
            pred = model.normalized_outputs(hq[b], ha[b])
            loss = torch.mean((pred[..., 0] - target) ** 2)
            if en is not None:
                loss = loss + torch.mean((pred[..., 1] - model.effort_norm(en[b])) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
            samples += len(b)
        sched.step()
        dt = time.perf_counter() - t0
        t_fit += dt
        seconds += dt
        model.eval()
        v = errors(model, val)
        row = {
            "epoch": epoch + 1,
            "loss": total / len(perm),
            "val_rmse_rad": v["rmse_rad"],
            "seconds": round(seconds, 2),
        }
        curve.append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}", val=f"{v['rmse_rad'] * 1e3:.2f}mrad")
        checkpoint.save(
            state_path,
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
                "curve": curve,
                "seconds": seconds,
            },
            format=STATE_FORMAT,
        )
    if bar is not None:
        bar.close()
    model.eval()
    report = {
        "kind": cfg.model.kind,
        "hand": hand,
        "data": summaries,
        "init": None if init is None else {"path": str(init), "data": init_meta.get("data")},
        "train_windows": len(train),
        "val_windows": len(val),
        "val_before": before,
        "val": errors(model, val),
        "train": errors(model, train.take(np.arange(min(len(train), 20000)))),
        "epochs": cfg.epochs,
        "seconds": round(seconds, 1),
        "samples_per_s": round(samples / t_fit, 1) if t_fit > 0 else None,
        "params": int(sum(p.numel() for p in model.parameters())),
        "config": {**asdict(cfg), "model": asdict(cfg.model)},
        "curve": curve,
    }
    fp = checkpoint.fingerprint([s["fingerprint"] for s in summaries])
    save_ndm(out, model, {"hand": hand, "data_fingerprint": fp, **report})
    return report
