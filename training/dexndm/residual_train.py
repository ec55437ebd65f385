"""Train DexNDM's residual policy through a dynamics model of the target hand (Sec. 3.3).

    pi_res* = argmin E_{tau ~ sim} sum_t || q_{t+1} - f_psi({q_j, a_j + pi_res(o_j, a_j)}_j) ||

On the base policy's simulated rollouts (``data generate --task rotate``: joint angles,
targets, axis and gravity per step), the residual is trained so that the *target hand*
(its dynamics model ``f_psi``, fine-tuned on that hand's chaos-box data) given the
simulator's history and the corrected targets ends where the simulator's hand did. Every
target of the model's window gets its own correction from its own observation, as it
would have at run time. The dynamics model is frozen. The loss is the model's normalised
next-angle error plus a small penalty on the correction (``l2``).

``horizon`` K > 1 (ours; the paper's objective is K = 1): from the simulator's history the
model is rolled K steps on its own predictions, the base policy's logged targets replayed
open loop, each new step's correction computed from the observation the *predicted* angles
make, and the loss averages the K next-angle errors against the simulator's. A one-step
residual learns corrections from on-track states only; the rolled one also sees the states
its own errors and the hand's lag lead to (latency, low gains), as it will at run time.

``effort_weight`` w > 0 (ours): with a dynamics model that also predicts the actuators'
torques (``train ndm --effort``) and rollouts that recorded them, the loss adds w times the
mean squared normalised error between the target hand's predicted torques at t+1 and the
simulator's. Angles alone cannot tell a finger that presses on the object as hard as in
simulation from one that only touches it; the torques can.

Reports: on held-out rollouts, the dynamics model's error against the simulator's next
angles without and with the residual (the gap it closes), and the residual's size.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assets import checkpoint
from controllers.dexndm.generalist import generalist_obs
from controllers.dexndm.ndm import load_ndm
from controllers.dexndm.residual import ResidualConfig, ResidualPolicy, save_residual
from training.datagen.dataset import iter_segments, read_manifest, require_optional_field
from training.dexndm.ndm_train import EFFORT_HINT

log = logging.getLogger(__name__)


@dataclass
class ResidualTrainConfig:
    epochs: int = 20
    batch: int = 512
    lr: float = 5e-4
    l2: float = 0.03
    val_fraction: float = 0.1
    seed: int = 0
    threads: int | None = None
    model: ResidualConfig = field(default_factory=ResidualConfig)
    #: the residual's own T steps of (q, target); None: its base policy's (named in the
    #: rollouts' manifests), else ``model.history``
    history: int | None = None
    #: K, the steps the dynamics model is rolled on its own predictions per sample (1: the
    #: paper's one-step objective)
    horizon: int = 1
    #: std (rad) of Gaussian noise on the joint angles and targets of the residual's own
    #: observation while training (0: none); the dynamics model's window stays clean, so
    #: the residual learns one correction for nearby states rather than one per state
    obs_noise_rad: float = 0.0
    #: w, the weight of the torque error in the loss (0: angles only, the paper's); needs a
    #: dynamics model with effort and rollouts with ``effort``
    effort_weight: float = 0.0


class Rollouts:
    """The rollouts' rows, concatenated, and the rows ``t`` a sample can end at."""

    def __init__(
        self,
        roots: list[str | Path],
        T: int,
        W: int,
        val_fraction: float,
        horizon: int = 1,
        effort: bool = False,
    ) -> None:
        q, a, ax, g, eff, train, val = [], [], [], [], [], [], []
        offset = 0
        self.summaries = []
        fields = ("q", "target", "axis", "gravity") + (("effort",) if effort else ())
        for root in roots:
            if effort:
                require_optional_field(root, "effort", EFFORT_HINT)
            segs = list(iter_segments(root, fields))
            n_val = max(1, round(len(segs) * val_fraction)) if len(segs) > 1 else 0
            for k, s in enumerate(segs):
                L = len(s["q"])
                lo = T + W  # o_j of the window's first j needs T angles and T earlier targets
                # the last sample's K-th prediction is the segment's last angle
                rows = np.arange(offset + lo, offset + L - horizon)
                (val if k >= len(segs) - n_val else train).append(rows)
                q.append(s["q"])
                a.append(s["target"])
                ax.append(s["axis"])
                g.append(s["gravity"])
                if effort:
                    eff.append(s["effort"])
                offset += L
            m = read_manifest(root) or {}
            self.summaries.append(
                {
                    "path": str(root),
                    "segments": len(segs),
                    "physics": (m.get("meta", {}).get("physics") or {}).get("name"),
                    "fingerprint": checkpoint.fingerprint(m.get("chunks", []), m.get("rows")),
                }
            )
        if not q:
            raise ValueError("no rollouts")
        f = torch.float32
        self.q = torch.as_tensor(np.concatenate(q), dtype=f)
        self.a = torch.as_tensor(np.concatenate(a), dtype=f)
        self.axis = torch.as_tensor(np.concatenate(ax), dtype=f)
        self.gravity = torch.as_tensor(np.concatenate(g), dtype=f)
        self.effort = torch.as_tensor(np.concatenate(eff), dtype=f) if effort else None
        self.train = torch.as_tensor(np.concatenate(train) if train else np.zeros(0, int))
        self.val = torch.as_tensor(np.concatenate(val) if val else np.zeros(0, int))
        self.T, self.W, self.horizon = T, W, horizon

    def batch(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """For sample rows ``t`` (B,): the window rows j (B, W), each j's generalist
        observation (B, W, obs) and target step (B, W, n), the window's angles and targets
        (B, W, n), and the label q[t+1] (B, n). With a horizon K > 1 also what the rollout
        replays: the angles before the window (``q_pre``, B, T - 1, n; the observations
        of the predicted steps reach back into them), the base targets from t - T to
        t + K - 1 (``a_all``, B, T + K, n; a_all[:, T + k] is a[t + k]), the axis and
        gravity at t + 1 .. t + K - 1 (B, K - 1, 3) and the labels q[t+1 .. t+K]
        (``labels``, B, K, n)."""
        T, W, K = self.T, self.W, self.horizon
        j = t[:, None] + torch.arange(-W + 1, 1)
        hist = j[..., None] + torch.arange(-T + 1, 1)  # (B, W, T): q_k with a_{k-1}
        obs = generalist_obs(self.q[hist], self.a[hist - 1], self.axis[j], self.gravity[j])
        b = {
            "obs": obs,
            "step": self.a[j] - self.a[j - 1],
            "q_win": self.q[j],
            "a_win": self.a[j],
            "label": self.q[t + 1],
        }
        if self.effort is not None:
            b["effort_label"] = self.effort[t + 1]
        if K > 1:
            ahead = t[:, None] + torch.arange(1, K)
            b.update(
                q_pre=self.q[t[:, None] + torch.arange(-W - T + 2, -W + 1)],
                a_all=self.a[t[:, None] + torch.arange(-T, K)],
                axis_ahead=self.axis[ahead],
                gravity_ahead=self.gravity[ahead],
                labels=self.q[t[:, None] + torch.arange(1, K + 1)],
            )
        return b


def _rollout(
    res_model: ResidualPolicy, ndm: Any, b: dict[str, torch.Tensor], horizon: int, use: bool
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """The dynamics model's predictions q[t+1 .. t+K] of a batch (a list of (B, n)), rolled
    on its own predictions after the first, with every target corrected by the residual
    (``use``) from its own observation; every correction made (B, W + K - 1, n); and the
    torques it predicts at t+1 (a model with effort; else None)."""
    T = res_model.cfg.history
    res = res_model(b["obs"], b["step"]) if use else torch.zeros_like(b["a_win"])
    q_win, a_win = b["q_win"], b["a_win"]
    first, effort = ndm.predict(q_win, a_win + res)
    preds = [first]
    if horizon == 1:
        return preds, res, effort
    # the angles an observation reads: before the window, the window, then the predictions
    qs = torch.cat([b["q_pre"], q_win, preds[0][:, None]], dim=1)
    a_all = b["a_all"]
    W = q_win.shape[1]
    corr = [res]
    for k in range(1, horizon):
        # step t + k: its observation from the last T angles (q_{t+k} predicted) and the
        # base targets a[t+k-T .. t+k-1]; its own base step a[t+k] - a[t+k-1]
        a_hist = a_all[:, k : k + T]
        step = a_all[:, T + k] - a_all[:, T + k - 1]
        if use:
            obs = generalist_obs(
                qs[:, -T:], a_hist, b["axis_ahead"][:, k - 1], b["gravity_ahead"][:, k - 1]
            )
            r = res_model(obs, step)
        else:
            r = torch.zeros_like(step)
        corr.append(r[:, None])
        r_win = torch.cat(corr, dim=1)[:, -W:]
        a_win = torch.cat([a_win[:, 1:], a_all[:, T + k][:, None]], dim=1)
        q_win = qs[:, -W:]
        preds.append(ndm(q_win, a_win + r_win))
        qs = torch.cat([qs, preds[-1][:, None]], dim=1)
    return preds, torch.cat(corr, dim=1), effort


def _loss(
    res_model: ResidualPolicy,
    ndm: Any,
    b: dict[str, torch.Tensor],
    l2: float,
    use: bool = True,
    horizon: int = 1,
    effort_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, normalised next-angle error (mean over the K steps), mean |residual| rad);
    with ``effort_weight``, the loss adds that much of the normalised torque error at t+1."""
    preds, res, effort = _rollout(res_model, ndm, b, horizon, use)
    labels = [b["label"]] if horizon == 1 else b["labels"].unbind(1)
    err = sum(
        torch.mean(((p - y) / ndm.out_norm.std) ** 2) for p, y in zip(preds, labels, strict=True)
    )
    err = err / horizon
    reg = torch.mean((res / res_model.cfg.max_rad) ** 2)
    loss = err + l2 * reg
    if effort_weight > 0:
        e_err = torch.mean(((effort - b["effort_label"]) / ndm.effort_norm.std) ** 2)
        loss = loss + effort_weight * e_err
    return loss, err, res.abs().mean()


@torch.no_grad()
def _evaluate(res_model, ndm, data: Rollouts, rows: torch.Tensor, batch: int = 2048) -> dict:
    """The model's error against the simulator one step on and, with a horizon K > 1, at
    the roll's K-th step, with and without the residual; one roll per batch gives both."""
    K = data.horizon
    tot = dict.fromkeys(("with", "without", "res", "rad_with", "rad_without"), 0.0)
    tot.update(rad_with_K=0.0, rad_without_K=0.0, nm_with=0.0, nm_without=0.0)
    has_effort = data.effort is not None and ndm.cfg.effort
    W = ndm.cfg.window
    n = 0
    for i in range(0, len(rows), batch):
        t = rows[i : i + batch]
        b = data.batch(t)
        for key, use in (("with", True), ("without", False)):
            preds, corr, effort = _rollout(res_model, ndm, b, K, use)
            err = preds[0] - b["label"]
            if has_effort:
                de = effort - b["effort_label"]
                tot["nm_" + key] += float(torch.sum(de**2).item()) / ndm.cfg.n
            tot[key] += float(torch.sum((err / ndm.out_norm.std) ** 2).item()) / ndm.cfg.n
            tot["rad_" + key] += float(torch.sum(err**2).item()) / ndm.cfg.n
            if K > 1:  # the rolled error at the horizon's last step
                last = preds[-1] - b["labels"][:, -1]
                tot[f"rad_{key}_K"] += float(torch.sum(last**2).item()) / ndm.cfg.n
            if use:  # the correction of the window's last (the current) step
                tot["res"] += float(corr[:, W - 1].abs().mean(dim=1).sum())
        n += len(t)
    if n == 0:
        return {}
    out = {
        "ndm_error_without": tot["without"] / n,
        "ndm_error_with": tot["with"] / n,
        "ndm_rmse_rad_without": float(np.sqrt(tot["rad_without"] / n)),
        "ndm_rmse_rad_with": float(np.sqrt(tot["rad_with"] / n)),
        "residual_mean_abs_rad": tot["res"] / n,
        "samples": n,
    }
    if has_effort:
        out["ndm_effort_rmse_nm_without"] = float(np.sqrt(tot["nm_without"] / n))
        out["ndm_effort_rmse_nm_with"] = float(np.sqrt(tot["nm_with"] / n))
    if K > 1:
        out["horizon"] = K
        out["ndm_rmse_rad_at_horizon_without"] = float(np.sqrt(tot["rad_without_K"] / n))
        out["ndm_rmse_rad_at_horizon_with"] = float(np.sqrt(tot["rad_with_K"] / n))
    return out


def base_policy(data: list[str | Path]) -> dict[str, Any] | None:
    """The generalist whose rollouts ``data`` are, from the manifests ``data generate``
    writes: ``{"path", "data_fingerprint", "history"}`` (its file, what it was trained on,
    the steps it sees; the residual corrects that policy and sees its observation). None
    when no manifest names one. Rollouts of different base policies are refused: a residual
    corrects one policy."""
    found: dict[tuple, dict[str, Any]] = {}
    for root in data:
        meta = (read_manifest(root) or {}).get("meta", {})
        pm = meta.get("policy_meta") or {}
        T = (pm.get("env") or {}).get("history")
        fp = pm.get("data_fingerprint")
        if T is None and fp is None:
            continue
        rec = {
            "path": meta.get("policy"),
            "data_fingerprint": fp,
            "history": None if T is None else int(T),
        }
        found.setdefault((rec["history"], fp), rec)
    if len({T for T, _ in found}) > 1:
        raise ValueError(
            f"rollouts of base policies with different histories: {sorted(T for T, _ in found)}"
        )
    if len(found) > 1:
        paths = sorted(str(r["path"]) for r in found.values())
        raise ValueError(
            f"rollouts of different base policies ({', '.join(paths)}): "
            "a residual corrects one policy; train one per base policy"
        )
    return next(iter(found.values())) if found else None


def train_residual(
    data: list[str | Path],
    ndm_path: str | Path,
    out: str | Path,
    cfg: ResidualTrainConfig,
    *,
    hand: str = "leap",
    progress: bool = False,
) -> dict[str, Any]:
    """Train a residual policy through the dynamics model at ``ndm_path``; writes ``out``."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ndm, ndm_meta = load_ndm(ndm_path, hand=hand)
    for p in ndm.parameters():
        p.requires_grad_(False)
    ndm.eval()
    base = base_policy(data)
    T_base = None if base is None else base["history"]
    T_res = cfg.history if cfg.history is not None else (T_base or cfg.model.history)
    if T_res < 1:
        raise ValueError(f"the residual's history must be >= 1 step, got {T_res}")
    if T_res != cfg.model.history:
        log.info("the residual sees %d steps (its base policy: %s)", T_res, T_base)
        cfg = replace(cfg, model=replace(cfg.model, history=T_res))
    if cfg.horizon < 1:
        raise ValueError(f"the horizon must be >= 1 step, got {cfg.horizon}")
    if cfg.obs_noise_rad < 0:
        raise ValueError(f"the observation noise must be >= 0 rad, got {cfg.obs_noise_rad}")
    if cfg.effort_weight < 0:
        raise ValueError(f"the effort weight must be >= 0, got {cfg.effort_weight}")
    if cfg.effort_weight > 0 and not ndm.cfg.effort:
        raise ValueError(
            f"{ndm_path}: this dynamics model predicts no torques; train one with "
            "`train ndm --effort` to use --effort-weight"
        )
    T, W = cfg.model.history, ndm.cfg.window
    rollouts = Rollouts(
        list(data), T, W, cfg.val_fraction, cfg.horizon, effort=cfg.effort_weight > 0
    )
    if len(rollouts.train) == 0:
        raise ValueError("no training samples (rollouts shorter than history + window?)")
    model = ResidualPolicy(cfg.model)
    sample = rollouts.batch(rollouts.train[: min(len(rollouts.train), 20000)])
    model.norm.fit(
        torch.cat([sample["obs"], sample["step"]], dim=-1).reshape(-1, cfg.model.obs_dim)
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    before = _evaluate(model, ndm, rollouts, rollouts.val)
    curve = []
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, desc="DexNDM residual", unit="ep")
    for epoch in range(cfg.epochs):
        model.train()
        perm = rollouts.train[torch.as_tensor(rng.permutation(len(rollouts.train)))]
        total = 0.0
        for i in range(0, len(perm), cfg.batch):
            b = rollouts.batch(perm[i : i + cfg.batch])
            if cfg.obs_noise_rad > 0:  # the histories only; axis and gravity stay exact
                hist = 2 * cfg.model.n * cfg.model.history
                noise = torch.zeros_like(b["obs"])
                noise[..., :hist] = cfg.obs_noise_rad * torch.randn_like(noise[..., :hist])
                b["obs"] = b["obs"] + noise
            loss, _, _ = _loss(
                model, ndm, b, cfg.l2, horizon=cfg.horizon, effort_weight=cfg.effort_weight
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b["label"])
        model.eval()
        v = _evaluate(model, ndm, rollouts, rollouts.val)
        curve.append({"epoch": epoch + 1, "loss": total / len(perm), **v})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val=f"{v.get('ndm_error_with', float('nan')):.4f}")
    if bar is not None:
        bar.close()
    report = {
        "hand": hand,
        "ndm": str(ndm_path),
        "ndm_kind": ndm.cfg.kind,
        "ndm_data": ndm_meta.get("data"),
        "data": rollouts.summaries,
        # the generalist it corrects (the dexndm controller compares it with the one it runs)
        "base_policy": base,
        "train_samples": len(rollouts.train),
        "val_samples": len(rollouts.val),
        "val_before": before,
        "val": curve[-1] if curve else before,
        "seconds": round(time.perf_counter() - t0, 1),
        "config": {**asdict(cfg), "model": asdict(cfg.model)},
        "curve": curve,
    }
    fp = checkpoint.fingerprint(
        [s["fingerprint"] for s in rollouts.summaries], ndm_meta.get("data_fingerprint")
    )
    save_residual(out, model, {"hand": hand, "data_fingerprint": fp, **report})
    return report
