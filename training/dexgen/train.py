"""Train DexGen's diffusion and inverse dynamics models on a simulation dataset.

``dexteleop train dexgen --hand leap --data PATH [PATH ...]`` (see
:func:`add_train_arguments`). Both models train together on the same batches: the diffusion
model with the standard epsilon-prediction loss (DDPM noising from diffusers), the inverse
dynamics model with the Gaussian negative log-likelihood of the target change given the true
motion. AdamW with linear warm-up and cosine decay, an exponential moving average of the
weights (what is exported and shipped), a progress bar, TensorBoard curves, and a resumable
training state written every ``save_every`` steps (and on a time limit). Under ``torchrun``
every process trains on its own batches and DistributedDataParallel averages the gradients
(NCCL on GPUs, gloo on CPUs); only rank 0 writes.

Files in the run folder: ``dexgen.pt`` (the EMA model: what the app loads),
``train_state.pt`` (to resume), ``report.json`` (settings, data, curves, time), ``tb/``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from assets import checkpoint
from controllers.dexgen import MODES
from controllers.dexgen.models import SIZES, DexGenConfig, DexGenModel, state_features
from controllers.dexgen.sampler import GuidedSampler, ddpm_scheduler, mode_onehot

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Attributes:
    size: model size (``controllers.dexgen.models.SIZES``).
    steps: optimizer steps. batch: transitions per step and process.
    lr, weight_decay: AdamW. warmup: linear warm-up steps, then cosine decay to 0.
    ema_decay: EMA of the weights (with the usual (1 + k) / (10 + k) ramp early on).
    inverse_weight: weight of the inverse dynamics loss in the sum.
    save_every, log_every, val_every: in steps. max_minutes: stop (and save) after this long.
    val_fraction: the dataset's last transitions (whole episodes, but for one) held out.
    norm_samples: transitions that fit the normalisers. seed: data order and noise.
    horizon: future steps T of a motion (the paper: 2). history: proprioception steps (4).
    held_only: train on the episodes that kept the object only (see ``DatasetReader``).
    """

    size: str = "demo"
    steps: int = 60_000
    batch: int = 256
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup: int = 500
    ema_decay: float = 0.999
    inverse_weight: float = 1.0
    save_every: int = 1000
    log_every: int = 50
    val_every: int = 1000
    max_minutes: float | None = None
    val_fraction: float = 0.02
    norm_samples: int = 200_000
    seed: int = 0
    horizon: int = 2
    history: int = 4
    held_only: bool = False


SCALES: dict[str, TrainSettings] = {
    "smoke": TrainSettings(size="smoke", steps=40, batch=64, warmup=5, save_every=20,
                           log_every=10, val_every=20, norm_samples=4000, val_fraction=0.1),
    "demo": TrainSettings(size="demo", steps=60_000, batch=256, max_minutes=45.0),
    "paper": TrainSettings(size="paper", steps=300_000, batch=1024, lr=1e-4, warmup=2000,
                           save_every=2000, val_every=2000),
}  # fmt: skip


@dataclass
class Batch:
    state: torch.Tensor  # (B, S)
    motion: torch.Tensor  # (B, M) keypoint offsets, m
    dact: torch.Tensor  # (B, n) target - target in force
    mode: torch.Tensor  # (B,) mode index
    action: torch.Tensor  # (B, n) the target sent
    target_now: torch.Tensor  # (B, n) the target in force


def load_batch(reader: Any, idx: np.ndarray, device: Any = "cpu") -> Batch:
    """Transitions ``idx`` of a :class:`~training.datagen.dataset.DatasetReader`."""
    b = reader.get(np.sort(idx))
    state = state_features(b.keypoints, b.q, b.prev_target)
    motion = (b.future_keypoints - b.keypoints[:, -1:]).reshape(len(state), -1)
    now = b.prev_target[:, -1]
    to = lambda x, dt=torch.float32: torch.as_tensor(np.asarray(x), dtype=dt, device=device)  # noqa: E731
    return Batch(
        state=to(state),
        motion=to(motion),
        dact=to(b.action - now),
        mode=to(b.mode, torch.long),
        action=to(b.action),
        target_now=to(now),
    )


class Objective(nn.Module):
    """Both losses for one batch (one module, so DistributedDataParallel sees one forward)."""

    def __init__(self, model: DexGenModel, inverse_weight: float) -> None:
        super().__init__()
        self.model = model
        self.inverse_weight = inverse_weight
        c = model.config
        self.ddpm = ddpm_scheduler(c.train_timesteps, c.beta_schedule)

    def forward(
        self, b: Batch, noise: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = self.model
        state_n, motion_n = m.state_norm(b.state), m.motion_norm(b.motion)
        x_t = self.ddpm.add_noise(motion_n, noise, t)
        cond = m.condition(state_n, mode_onehot(b.mode, len(b.mode)).to(state_n.device))
        diffusion = ((m.eps(x_t, t, cond) - noise) ** 2).mean()
        y = m.action_norm(b.dact)
        mean, log_std = m.action_dist(state_n, motion_n)
        nll = (0.5 * ((y - mean) * torch.exp(-log_std)) ** 2 + log_std).mean()
        loss = diffusion + self.inverse_weight * nll
        return loss, {"diffusion": diffusion.detach(), "inverse_nll": nll.detach()}


def fit_normalizers(model: DexGenModel, reader: Any, idx: np.ndarray) -> None:
    b = load_batch(reader, idx)
    model.state_norm.fit(b.state)
    model.motion_norm.fit(b.motion, min_std=1e-5)  # 10 um: a keypoint that never moves
    model.action_norm.fit(b.dact, min_std=1e-5)


@torch.no_grad()
def validate(model: DexGenModel, b: Batch, seed: int = 0) -> dict[str, float]:
    """Held-out metrics: diffusion loss at fixed noise; inverse model NLL and target error
    (rad) given the true motion; unguided 10-step samples' keypoint error (mm) and the
    error (rad) of the targets the inverse model makes of them."""
    model.eval()
    c = model.config
    g = torch.Generator().manual_seed(seed)
    dev = b.state.device
    noise = torch.randn(b.motion.shape, generator=g).to(dev)
    t = torch.randint(0, c.train_timesteps, (len(b.state),), generator=g).to(dev)
    _, parts = Objective(model, 1.0)(b, noise, t)
    state_n, motion_n = model.state_norm(b.state), model.motion_norm(b.motion)
    target = model.targets(state_n, motion_n, b.target_now)
    cpu = copy.deepcopy(model).cpu() if dev.type != "cpu" else model
    smp = GuidedSampler(cpu, steps=10).sample(
        b.state.cpu(), mode=b.mode.cpu(), generator=torch.Generator().manual_seed(seed)
    )
    sampled_target = cpu.targets(smp.state_n, smp.motion_n, b.target_now.cpu())
    kp_err = (smp.motion - b.motion.cpu().reshape(smp.motion.shape)).norm(dim=-1).mean()
    return {
        "val_diffusion": float(parts["diffusion"]),
        "val_inverse_nll": float(parts["inverse_nll"]),
        "val_target_err_rad": float((target - b.action).abs().mean()),
        "val_sample_kp_err_mm": float(kp_err) * 1e3,
        "val_sampled_target_err_rad": float((sampled_target - b.action.cpu()).abs().mean()),
        "val_still_target_err_rad": float((b.target_now - b.action).abs().mean()),
    }


def _dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) under torchrun; (0, 1, 0) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


#: The resumable training state (``train_state.pt``; untagged before the tag).
STATE_FORMAT = "dexteleop-dexgen-train/1"


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    report: dict


def train(
    data: str | Path | list[str | Path],
    out: str | Path,
    *,
    hand: str = "leap",
    settings: TrainSettings | None = None,
    resume: bool = True,
    progress: bool = True,
    device: str | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train (or resume) DexGen on the dataset at ``data`` (a folder, or several read as
    one: each keeps its last ``val_fraction`` for validation); see the module docstring."""
    import torch.distributed as dist
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from torch.nn.parallel import DistributedDataParallel

    from training.datagen.dataset import DatasetReader

    s = settings or TrainSettings()
    out = Path(out)
    rank, world, local = _dist_info()
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)

    reader = DatasetReader(data, history=s.history, future=s.horizon, held_only=s.held_only)
    meta = reader.manifest.get("meta", {})
    if meta.get("hand", hand) != hand:
        raise ValueError(f"{data} holds {meta.get('hand')} data, not {hand}")
    train_idx, val_all = reader.split(s.val_fraction)
    train_n, n_val = len(train_idx), len(val_all)
    if train_n < s.batch:
        raise ValueError(f"{data}: {len(reader)} transitions, too few for batch {s.batch}")
    n_joints = reader.get(np.array([0])).q.shape[-1]
    config = DexGenConfig(
        hand=hand,
        n_joints=n_joints,
        history=s.history,
        horizon=s.horizon,
        modes=len(MODES),
        **SIZES[s.size],
    )

    state_path, ckpt_path = out / "train_state.pt", out / "dexgen.pt"
    model = DexGenModel(config)
    state = None
    if resume and state_path.is_file():
        state = checkpoint.load(
            state_path, format=STATE_FORMAT, what="DexGen training state", untagged=True
        )
        if state["config"] != dataclasses.asdict(config):
            raise ValueError(f"{state_path} was trained with another model configuration")
        model.load_state_dict(state["model"])
    else:
        rng = np.random.default_rng(s.seed)
        fit_normalizers(
            model, reader, train_idx[rng.choice(train_n, min(s.norm_samples, train_n), False)]
        )
    model.to(dev)
    ema = copy.deepcopy(model).eval()
    if state is not None:
        ema.load_state_dict(state["ema"])
    for p in ema.parameters():
        p.requires_grad_(False)
    objective = Objective(model, s.inverse_weight).to(dev)
    trainer: nn.Module = objective
    if world > 1:
        ids = [dev.index] if dev.index is not None else None
        trainer = DistributedDataParallel(objective, device_ids=ids)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, s.warmup, s.steps)
    step = 0
    report: dict[str, Any] = {"curve": [], "val": [], "seconds": 0.0}
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        report = state["report"]

    probe = train_idx[np.random.default_rng(s.seed).integers(0, train_n, min(train_n, 20_000))]
    modes = [MODES[i] for i in np.unique(reader.get(np.sort(probe)).mode)]
    val_idx = val_all[:: max(1, n_val // 512)][:512]
    val_batch = load_batch(reader, val_idx, dev)

    writer = bar = None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(out / "tb"))
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=s.steps, initial=step, desc=f"DexGen {hand}", unit="step")
    base = {
        "hand": hand,
        "data": [str(r) for r in reader.roots],
        "data_rows": reader.rows,
        "transitions": len(reader),
        "train_transitions": train_n,
        "settings": dataclasses.asdict(s),
        "config": dataclasses.asdict(config),
        "parameters": model.num_parameters(),
        "modes": modes,
        "world_size": world,
        "device": str(dev),
        "commit": checkpoint.git_commit(),
        "physics": meta.get("physics"),  # the data's simulation (absent in older data)
        "data_fingerprint": checkpoint.fingerprint([r / "manifest.json" for r in reader.roots]),
    }

    def save() -> None:
        report["seconds"] = round(report["seconds"] + time.perf_counter() - t_mark[0], 1)
        t_mark[0] = time.perf_counter()
        if rank != 0:
            return
        report.update(base, step=step)
        record = {
            "config": dataclasses.asdict(config),
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "report": report,
        }
        checkpoint.save(state_path, record, format=STATE_FORMAT, meta={"commit": base["commit"]})
        ema_cpu = copy.deepcopy(ema).cpu()
        ema_cpu.save(ckpt_path, step=step, settings=dataclasses.asdict(s), modes=modes,
                     data=base["data"], commit=base["commit"], physics=base["physics"],
                     data_fingerprint=base["data_fingerprint"],
                     last=report["curve"][-1:])  # fmt: skip
        (out / "report.json").write_text(json.dumps(report, indent=2))

    t_mark = [time.perf_counter()]
    t_start = time.perf_counter()
    c = config
    sums = {"loss": 0.0, "diffusion": 0.0, "inverse_nll": 0.0}
    count = 0
    stop = False
    while step < s.steps and not stop:
        model.train()
        rng = np.random.default_rng((s.seed, rank, step))
        b = load_batch(reader, train_idx[rng.integers(0, train_n, s.batch)], dev)
        g = torch.Generator().manual_seed(hash((s.seed, rank, step)) & 0x7FFF_FFFF)
        noise = torch.randn(b.motion.shape, generator=g).to(dev)
        t = torch.randint(0, c.train_timesteps, (s.batch,), generator=g).to(dev)
        loss, parts = trainer(b, noise, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        with torch.no_grad():
            d = min(s.ema_decay, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
                pe.lerp_(p, 1.0 - d)
        sums["loss"] += loss.item()
        for k, v in parts.items():
            sums[k] += float(v)
        count += 1
        if bar is not None:
            bar.update(1)
        if step % s.log_every == 0 or step == s.steps:
            row = {k: v / count for k, v in sums.items()}
            row.update(step=step, lr=sched.get_last_lr()[0])
            report["curve"].append(row)
            if writer is not None:
                for k, v in row.items():
                    if k != "step":
                        writer.add_scalar(f"train/{k}", v, step)
            if bar is not None:
                bar.set_postfix(loss=f"{row['loss']:.3f}", diff=f"{row['diffusion']:.3f}")
            sums = dict.fromkeys(sums, 0.0)
            count = 0
            elapsed = (time.perf_counter() - t_start) / 60
            flag = torch.tensor(float(s.max_minutes is not None and elapsed > s.max_minutes))
            if world > 1:
                flag = flag.to(dev)
                dist.all_reduce(flag)
            stop = bool(flag.item() > 0)
        if rank == 0 and (step % s.val_every == 0 or step == s.steps or stop):
            v = validate(ema, val_batch)
            v["step"] = step
            report["val"].append(v)
            if writer is not None:
                for k, x in v.items():
                    if k != "step":
                        writer.add_scalar(f"val/{k}", x, step)
        if step % s.save_every == 0 or step == s.steps or stop:
            save()
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    if world > 1:
        # every process must hold the same weights: gather a checksum of each
        total = float(sum(p.double().sum() for p in model.parameters()))
        sums_all: list[Any] = [None] * world
        dist.all_gather_object(sums_all, total)
        report["rank_checksums"] = sums_all
        if rank == 0:
            (out / "report.json").write_text(json.dumps({**report, **base}, indent=2))
        dist.barrier()
    if stop and step < s.steps:
        log.info("DexGen training paused at step %d (max_minutes); run again to resume", step)
    return TrainResult(checkpoint=ckpt_path, steps=step, report={**report, **base})


def main() -> int:  # python -m training.dexgen.train (what torchrun starts)
    import argparse

    from training.dexgen.cli import add_train_arguments, run_from_args

    p = argparse.ArgumentParser(description="train DexGen (see dexteleop train dexgen)")
    add_train_arguments(p)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_from_args(p.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
