"""Guided DDIM sampling of keypoint motions, and their joint targets (DexterityGen Sec. III-D).

The operator's command is an offset ``c`` (K, 3) of every keypoint from where it is now.
Among the motions the prior deems safe, the sampler looks for one close to it:
``dx ~ p(dx | o) exp(-alpha Dist(dx, c))`` with the paper's ``Dist = sum_i ||dx_i - c||^2``
over the T future steps. At every DDIM step the clean estimate of the sample is corrected::

    x0 <- x0 - alpha * Sigma_t * grad Dist(x0, c),    Sigma_t = (1 - abar_t) / 2

``Sigma_t`` (the paper leaves it undefined for DDIM) is our choice: half the variance of the
noise still in the sample at step t (``abar_t`` is the schedule's cumulative alpha), with
``Dist`` in metres squared. Since ``grad Dist = 2 (x0 - c)``, the correction moves every
future keypoint a fraction ``alpha (1 - abar_t)`` of the way to the command: large while
the sample is mostly noise (the prior is vague and the command shapes the motion), vanishing
over the last steps (``abar_t -> 1``), where the prior alone finishes the sample and pulls
it back onto motion it knows. ``alpha`` is therefore a dimensionless strength in [0, 1]: 0
is the unguided prior; 1 puts the first estimate (abar = 0.02 at 10 of 100 steps) 98 % of
the way to the command. The fraction is capped at 1 so that a step never overshoots.

The correction is applied the way classifier guidance enters DDIM (Dhariwal & Nichol 2021):
as the change of the predicted noise that yields the corrected clean estimate, so that the
DDIM update (``DDIMScheduler.step``'s formula) moves from a consistent pair. The gradient is
analytic: no autograd through the network, and ``alpha = 0`` runs exactly the unguided
sampler.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from controllers.dexgen.controller import MODES
from controllers.dexgen.models import NUM_KEYPOINTS, DexGenModel, state_features

#: Guidance strengths outside [0, MAX_GUIDANCE] are refused.
MAX_GUIDANCE = 1.0


#: The clean-sample estimate is clipped to this many standard deviations of the data at every
#: step (the normalised training motions stay within about 7): an estimate from a very noisy
#: sample divides the network's error by sqrt(abar_t) and must not run away.
CLIP_SAMPLE = 10.0


@functools.cache
def ddim_scheduler(train_timesteps: int, beta_schedule: str, steps: int) -> Any:
    """A diffusers DDIM scheduler over the training schedule, set to ``steps`` steps.

    ``leading`` spacing (diffusers' default, as Diffusion Policy uses it): the first step
    is the last multiple of the stride (t = 90 of 100 at 10 steps, abar = 0.02), not the
    schedule's final step, where abar is ~0 and an epsilon-prediction model's clean estimate
    is undefined. Cached: do not call ``set_timesteps`` on the result.
    """
    from diffusers import DDIMScheduler

    s = DDIMScheduler(
        num_train_timesteps=train_timesteps,
        beta_schedule=beta_schedule,
        clip_sample=True,
        clip_sample_range=CLIP_SAMPLE,
        prediction_type="epsilon",
        timestep_spacing="leading",
        set_alpha_to_one=True,
    )
    s.set_timesteps(steps)
    return s


def ddpm_scheduler(train_timesteps: int, beta_schedule: str) -> Any:
    """The diffusers DDPM scheduler that noises training samples."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=train_timesteps,
        beta_schedule=beta_schedule,
        clip_sample=False,
        prediction_type="epsilon",
    )


@dataclass
class Sample:
    """One guided sample per hand of the batch.

    Attributes:
        motion: (B, T, K, 3) keypoint offsets from now, m. motion_n: (B, M) normalised.
        state_n: (B, S) the normalised state it was sampled for.
        dist: (B,) the paper's Dist(motion, command) in m^2 (NaN without a command).
    """

    motion: torch.Tensor
    motion_n: torch.Tensor
    state_n: torch.Tensor
    dist: torch.Tensor


def mode_onehot(mode: Any, batch: int) -> torch.Tensor:
    """(B, modes) one-hot from a mode name, an index, or (B,) indices."""
    if isinstance(mode, str):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        mode = MODES.index(mode)
    idx = torch.as_tensor(mode, dtype=torch.long).reshape(-1)
    if idx.numel() == 1:
        idx = idx.expand(batch)
    if idx.numel() != batch or int(idx.min()) < 0 or int(idx.max()) >= len(MODES):
        raise ValueError(f"bad mode indices {idx.tolist()}")
    return torch.nn.functional.one_hot(idx, len(MODES)).float()


class GuidedSampler:
    """Samples motions from a :class:`DexGenModel` and turns them into joint targets.

    The DDIM steps are those of diffusers' ``DDIMScheduler`` (its timesteps and cumulative
    alphas); the deterministic update (eta = 0, clean estimate clipped to
    :data:`CLIP_SAMPLE`) is written out here, equal to ``DDIMScheduler.step`` (tested), so
    that one step is a handful of tensor operations. The FiLM layers are linear in the
    condition (state + mode + step): their per-sample part is computed once per sample and
    their per-step part once per schedule.

    Args:
        model: the trained model (eval mode).
        steps: DDIM steps (the paper: 8-12).
        dtype: the networks' precision (``torch.bfloat16`` halves the weights' memory
            traffic, which bounds the paper-size model at batch 1 on a CPU); the sampler's
            own arithmetic and the normalisers stay in float32.
    """

    def __init__(
        self, model: DexGenModel, *, steps: int = 10, dtype: torch.dtype = torch.float32
    ) -> None:
        import copy

        self.model = model
        self.config = model.config
        self.steps = steps
        self.dtype = dtype
        self.net = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        self.device = next(model.parameters()).device
        self._plans: dict[int, Any] = {}

    def scheduler(self, steps: int | None = None) -> Any:
        steps = self.steps if steps is None else steps
        if not 1 <= steps <= self.config.train_timesteps:
            raise ValueError(f"DDIM steps must be in [1, {self.config.train_timesteps}]")
        return ddim_scheduler(self.config.train_timesteps, self.config.beta_schedule, steps)

    def _plan(self, steps: int) -> list[tuple[Any, float, float, list[torch.Tensor]]]:
        """Per DDIM step: (timestep, abar_t, abar_prev, per-block FiLM of the step)."""
        if steps not in self._plans:
            sched = self.scheduler(steps)
            ac = sched.alphas_cumprod.double()
            ts = [int(t) for t in sched.timesteps]
            stride = self.config.train_timesteps // sched.num_inference_steps
            plan = []
            with torch.no_grad():
                for t in ts:
                    prev = t - stride
                    abar_prev = float(ac[prev]) if prev >= 0 else float(sched.final_alpha_cumprod)
                    emb = self.net.time_embed(torch.tensor([t], device=self.device))
                    films = [blk.film(emb) for blk in self.net.unet.blocks()]
                    plan.append((t, float(ac[t]), abar_prev, films))
            self._plans[steps] = plan
        return self._plans[steps]

    def normalize_state(self, state: Any) -> torch.Tensor:
        if isinstance(state, torch.Tensor):
            s = state.to(self.device, torch.float32)
        else:
            s = torch.as_tensor(np.asarray(state, dtype=np.float32), device=self.device)
        return self.model.state_norm(s)

    @torch.no_grad()
    def sample(
        self,
        state: Any,
        *,
        mode: Any = 0,
        command: Any = None,
        guidance: float = 0.0,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Sample:
        """Sample one motion per hand.

        Args:
            state: (B, S) state features (:func:`~controllers.dexgen.models.state_features`).
            mode: the task mode (name, index or (B,) indices).
            command: (B, K, 3) commanded keypoint offsets from now, m; None: unguided.
            guidance: alpha in [0, 1] (see the module docstring).
            steps: DDIM steps (default: the sampler's).
            generator: the source of the initial noise (fixed seed: same samples).
        """
        if math.isnan(guidance) or not 0.0 <= guidance <= MAX_GUIDANCE:
            raise ValueError(f"guidance must be in [0, {MAX_GUIDANCE}], got {guidance}")
        net, cfg, dt = self.net, self.config, self.dtype
        state_n = self.normalize_state(state)
        B = state_n.shape[0]
        plan = self._plan(self.steps if steps is None else steps)
        cond = net.condition(state_n.to(dt), mode_onehot(mode, B).to(self.device, dt))
        per_sample = [F.linear(cond, blk.film.weight) for blk in net.unet.blocks()]
        x = torch.randn(B, cfg.motion_dim, generator=generator).to(self.device)
        cmd = None
        if command is not None:
            cmd = torch.as_tensor(np.asarray(command, dtype=np.float32), device=self.device)
            cmd = cmd.reshape(B, 1, NUM_KEYPOINTS, 3)
        guide = cmd is not None and guidance > 0.0
        mean, std = self.model.motion_norm.mean, self.model.motion_norm.std
        clip = CLIP_SAMPLE
        for _, abar, abar_prev, per_step in plan:
            films = [a + b for a, b in zip(per_sample, per_step, strict=True)]
            eps = net.unet.run(x.to(dt), films).float()
            x0 = ((x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)).clamp(-clip, clip)
            if guide:
                x0_m = (x0 * std + mean).reshape(B, cfg.horizon, NUM_KEYPOINTS, 3)
                frac = min(guidance * (1 - abar), 1.0)  # alpha * Sigma_t * 2
                x0 = x0 - (frac * (x0_m - cmd)).reshape(B, -1) / std
                eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
            x = math.sqrt(abar_prev) * x0 + math.sqrt(1 - abar_prev) * eps
        motion = (x * std + mean).reshape(B, cfg.horizon, NUM_KEYPOINTS, 3)
        if cmd is not None:
            dist = ((motion - cmd) ** 2).sum(dim=(1, 2, 3))
        else:
            dist = torch.full((B,), float("nan"), device=self.device)
        return Sample(motion=motion, motion_n=x, state_n=state_n, dist=dist)

    @torch.no_grad()
    def targets_from(
        self, state_n: torch.Tensor, motion_n: torch.Tensor, target_now: Any
    ) -> torch.Tensor:
        """(B, n) joint targets (rad) for normalised state and motion."""
        net, dt = self.net, self.dtype
        mean, _ = net.action_dist(state_n.to(dt), motion_n.to(dt))
        if isinstance(target_now, torch.Tensor):
            tn = target_now.to(self.device, torch.float32)
        else:
            tn = torch.as_tensor(np.asarray(target_now, dtype=np.float32), device=self.device)
        return tn + self.model.action_norm.inverse(mean.float())

    @torch.no_grad()
    def targets(self, state: Any, motion: Any, target_now: Any) -> torch.Tensor:
        """(B, n) joint targets that make the hand perform ``motion`` (B, T, K, 3), m."""
        state_n = self.normalize_state(state)
        mot = torch.as_tensor(np.asarray(motion, dtype=np.float32), device=self.device)
        mot = mot.reshape(state_n.shape[0], -1)
        return self.targets_from(state_n, self.model.motion_norm(mot), target_now)


def remaining_motion(
    plan: np.ndarray, anchor: np.ndarray, since: int, keypoints: np.ndarray
) -> np.ndarray:
    """The rest of planned motions as offsets from the keypoints now (between samples).

    Args:
        plan: (B, T, K, 3) motions sampled ``since`` control steps ago, as offsets from the
            keypoints ``anchor`` (B, K, 3) of that moment.
        keypoints: (B, K, 3) the keypoints now.

    Returns:
        (B, T, K, 3): the planned keypoints still ahead, extended past the plan's end by its
        last step, minus the keypoints now.
    """
    T = plan.shape[1]
    goal = anchor[:, None] + plan[:, since:]
    last = plan[:, -1:] - (plan[:, -2:-1] if T > 1 else 0.0)
    while goal.shape[1] < T:  # keep going the way the plan ended
        goal = np.concatenate([goal, goal[:, -1:] + last], axis=1)
    return goal - keypoints[:, None]


class History:
    """The last ``H`` proprioception steps of B hands, for the model's state.

    Each step holds the keypoints, joint positions and the target in force (the target
    sent the step before); a hand's history starts (or restarts) filled with its first step.
    """

    def __init__(self, batch: int, history: int, n_joints: int) -> None:
        self.kp = np.zeros((batch, history, NUM_KEYPOINTS, 3), np.float32)
        self.q = np.zeros((batch, history, n_joints), np.float32)
        self.target = np.zeros((batch, history, n_joints), np.float32)
        self.started = np.zeros(batch, bool)

    def push(self, keypoints: Any, q: Any, target: Any, ids: Any = None) -> None:
        """Append a step for hands ``ids`` (default all): arrays (b, K, 3), (b, n), (b, n)."""
        ids = np.arange(len(self.q)) if ids is None else np.asarray(ids)
        fresh = ~self.started[ids]
        for buf, v in ((self.kp, keypoints), (self.q, q), (self.target, target)):
            v = np.asarray(v, np.float32)
            rows = np.roll(buf[ids], -1, axis=1)
            rows[:, -1] = v
            rows[fresh] = v[fresh][:, None]
            buf[ids] = rows
        self.started[ids] = True

    def restart(self, ids: Any) -> None:
        self.started[np.asarray(ids)] = False

    def features(self) -> np.ndarray:
        return state_features(self.kp, self.q, self.target)
