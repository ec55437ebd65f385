"""Distil rotation specialists into one generalist (DexNDM Sec. 3.2; ``dexteleop train
rotation-generalist``).

Each specialist (a PPO ``policy.pt`` of the ``rotate`` task) is rolled out in its own
settings (axes, wrists, objects, start, recorded in its file): the joint targets its mean
actions produce, as the generalist's delta actions (the change of target over the step
divided by the generalist's scale, the hand's rate limit per step, so that every target a
specialist sends is one the generalist can send, whatever the specialist's action mode),
with the generalist's observations
(:func:`controllers.dexndm.generalist.generalist_obs`: the last 10 joint angles and targets,
the axis, the gravity direction). As in DexNDM, only episodes the specialist kept the
object through are kept (behaviour cloning on successful rollouts; the paper found DAgger
worse). The generalist, a residual MLP, regresses the specialists' actions (MSE); 5 % of
the episodes are held out for the validation loss. The file records the specialists, the
data, the losses and the physics.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assets import checkpoint
from assets.physics import differences
from controllers.dexndm.generalist import (
    GENERALIST_FORMAT,
    GeneralistConfig,
    GeneralistNet,
    RotationGeneralist,
)

log = logging.getLogger(__name__)


def shipped_generalist(hand: str) -> Path:
    """The shipped generalist of a hand."""
    from controllers.dexndm import generalist_path

    return generalist_path(hand)


@dataclass
class DistillSettings:
    episodes: int = 64  # per specialist, rolled out in parallel worlds
    rounds: int = 1  # batches of ``episodes`` per specialist
    episode_s: float = 20.0
    #: T, steps of (q, target) the generalist sees (DexNDM: 10); longer than the
    #: specialists' own history is allowed (the rollouts keep their own buffer)
    history: int = 10
    hidden: int = 512
    blocks: int = 5
    epochs: int = 30
    batch: int = 2048
    lr: float = 1e-3
    weight_decay: float = 1e-5
    val_frac: float = 0.05
    keep_dropped: bool = False
    #: > 0: the specialists of each wrist act together, the axis of half the worlds (at
    #: random) switching to another specialist's every ``flip_s`` seconds (+-25 %), so that
    #: the generalist learns to reverse when the operator switches axes (specialists of
    #: several wrists or objects: one such run per wrist and object, :func:`switch_groups`);
    #: 0: one specialist and axis per episode
    flip_s: float = 0.0
    #: the physics randomization of the rollouts (``Randomization.named``): ``on`` as the
    #: specialists trained; ``no-force`` keeps the episodes random pushes would end
    randomization: str = "on"
    #: DAgger after behaviour cloning (Ross et al. 2011): rounds in which the generalist
    #: drives each world with probability 1 - beta (beta = 0.5, 0.25, ...), every state it
    #: visits labelled with the specialist's action for the axis commanded there; the net is
    #: fine-tuned on all data for ``dagger_epochs`` after each round. DexNDM found DAgger no
    #: better than cloning for fixed axes; switching axes mid-episode visits states the
    #: specialists' own rollouts rarely reach.
    dagger_rounds: int = 0
    dagger_epochs: int = 4
    #: the weight of the rows commanded about an axis in the loss (``{"z+": 2.0}``: each +z
    #: row counts twice); axes not named weigh 1. The validation loss stays unweighted.
    axis_weight: dict[str, float] = field(default_factory=dict)
    #: keep every (observation, action) row collected next to the generalist
    #: (``NAME.data.npz``), so that :func:`refit` can fit another net to the same data
    save_data: bool = False
    seed: int = 0
    threads: int = 2


def row_weights(obs: np.ndarray, axis_weight: dict[str, float]) -> np.ndarray:
    """(N,) each row's weight in the loss: ``axis_weight`` of the axis in its observation
    (the generalist's input ends with the axis and the gravity direction), else 1."""
    from devices.tick import axis_vector

    check_axis_weights(axis_weight)
    w = np.ones(len(obs))
    axes = np.asarray(obs[:, -6:-3], dtype=float)
    for name, weight in axis_weight.items():
        w[np.all(np.abs(axes - axis_vector(name)) < 1e-6, axis=1)] = weight
    return w


def check_axis_weights(axis_weight: dict[str, float]) -> None:
    """ValueError unless every key is a known axis and every weight finite and > 0."""
    from devices.tick import axis_vector

    for name, weight in axis_weight.items():
        axis_vector(name)  # a known axis
        if not (np.isfinite(weight) and weight > 0):
            raise ValueError(f"axis weight of {name}: {weight} (must be finite and > 0)")


def specialist_settings(path: str | Path) -> dict[str, Any]:
    """The rotate settings a specialist was trained in (axes, wrists, objects, start, and
    what its observations and actions depend on)."""
    from training.rl.ppo import POLICY_FORMAT, Policy

    ck = checkpoint.load(path, format=POLICY_FORMAT, what="RL policy")
    if ck.meta.get("task") != "rotate":
        raise ValueError(f"{path}: a {ck.meta.get('task')!r} policy, not a rotate specialist")
    return {**Policy.env_overrides(path), **rotation_trained_settings(path)}


def collect(
    paths: list[str | Path],
    hand: str,
    s: DistillSettings,
    student: GeneralistNet | None = None,
    beta: float = 1.0,
    seed_offset: int = 0,
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]], dict[str, Any]]:
    """Roll every specialist out; returns arrays {obs, act, episode} of the kept episodes,
    one summary per specialist (per run of switching specialists with ``flip_s``), and the
    physics (all specialists must share it). With a ``student`` (DAgger), the student drives
    each world with probability ``1 - beta`` and the specialists only label; every episode
    is kept up to its end or drop."""
    from training.envs import make_env
    from training.envs.base import Randomization
    from training.rl.evaluate import DEMO_OBJECTS

    data: dict[str, list[np.ndarray]] = {"obs": [], "act": [], "episode": []}
    summaries, physics, scale = [], None, None
    groups = [[p] for p in paths] if s.flip_s <= 0 else switch_groups(paths)
    for i, group in enumerate(groups):
        over = _group_settings(group)
        env = make_env(
            "rotate",
            hand=hand,
            num_envs=s.episodes,
            nthread=s.threads,
            seed=s.seed + 1000 * i + seed_offset,
            episode_s=s.episode_s,
            dr=Randomization.named(s.randomization),
            **{**DEMO_OBJECTS, **over},
        )
        ph = env.physics()
        if physics is not None and differences(physics, ph):
            raise ValueError(f"{group[0]}: trained on other physics than the first specialist")
        physics = ph
        scale = float(np.max(env.max_step))  # the generalist's delta: the rate limit
        team = SpecialistTeam(group, env)
        summary = _rollouts(env, team, scale, s, data, student, beta, seed_offset)
        log.info("%s: %d of %d episodes dropped the object, %d kept",
                 " + ".join(map(str, group)), summary["dropped"], s.episodes * s.rounds,
                 summary["kept"])  # fmt: skip
        summaries.append(
            {
                "path": " + ".join(map(str, group)),
                "axes": list(env.cfg.axes),
                "wrists": list(env.cfg.wrists),
                "families": list(env.cfg.families),
                "start": env.cfg.start,
                "rest_q": [float(v) for v in env.cfg.rest_q],
                "lie": bool(env.cfg.lie),
                "scale_range": [float(v) for v in env.cfg.scale_range],
                "action_mode": env.cfg.action_mode,
                "episodes": s.episodes * s.rounds,
                **summary,
            }
        )
    if not data["obs"]:
        raise ValueError("no specialist kept the object through an episode: nothing to clone")
    out = {k: np.concatenate(v) for k, v in data.items()}
    return out, summaries, {"physics": physics, "action_scale_rad": scale}


def switch_groups(paths: list[str | Path]) -> list[list[str | Path]]:
    """The specialists an operator switches between, mid-episode (``flip_s``): one group
    per wrist orientation and object (the axis is switched, the wrist and the object in
    the hand stay), in the order first named; a group rolls out in one environment
    (:func:`_group_settings`)."""
    groups: dict[tuple[Any, ...], list[str | Path]] = {}
    for p in paths:
        st = specialist_settings(p)
        key = (tuple(st.get("wrists", ())), tuple(st.get("families", ())), st.get("lie"))
        groups.setdefault(key, []).append(p)
    return list(groups.values())


def _group_settings(group: list[str | Path]) -> dict[str, Any]:
    """One environment for specialists switched mid-episode: they must differ only in their
    axes (the union is the environment's), in whether they correct a gait and in whether
    they are ``blind``: with one that corrects a gait, the environment has gaits for those
    specialists' axes only (``gait_axes``), the others' worlds keep the plain reference, and
    a switch to a gait's axis starts the gait anew (``gait_from_switch``); the environment
    is the oracle's, a blind specialist seeing it with the object's slots emptied."""
    settings = [specialist_settings(p) for p in group]
    own = ("axes", "gait", "blind")  # a blind specialist sees the oracle's env with its view
    rest = [{k: v for k, v in st.items() if k not in own} for st in settings]
    for p, st in zip(group[1:], rest[1:], strict=True):
        if st != rest[0]:
            diff = sorted(k for k in {*st, *rest[0]} if st.get(k) != rest[0].get(k))
            raise ValueError(
                f"{p}: switching specialists needs the same settings but the axes; "
                f"{group[0]} differs in {', '.join(diff)}"
            )
    axes = [a for st in settings for a in st["axes"]]
    if len(set(axes)) != len(axes):
        raise ValueError(f"two specialists for one axis: {axes}")
    gaits = [st.get("gait", False) for st in settings]
    out = {**rest[0], "axes": tuple(axes), "gait": any(gaits)}
    if any(gaits):
        # a switch to a gait's axis starts the gait there: what the teacher does next then
        # follows from the switch (which the student sees), not from a clock it cannot see
        out["gait_from_switch"] = True
    if any(gaits) and not all(gaits):
        out["gait_axes"] = tuple(a for st in settings if st.get("gait", False) for a in st["axes"])
    return out


class _SpecialistView:
    """The environment as one specialist sees it: without the gait's phase features (a
    specialist without a gait in an environment with gaits) and with the object's slots
    filled with zeros (a ``blind`` specialist in the oracle's environment); everything else
    is the environment's."""

    def __init__(self, env: Any, strip_phase: bool, blind: bool) -> None:
        self._env = env
        width = env.get_observations()["policy"].shape[1]
        cols = np.arange(width)
        self.keep = np.delete(cols, cols[env.gait_phase_columns()]) if strip_phase else cols
        self.empty = env.object_columns() if blind else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def strip(self, obs: Any) -> Any:
        out = obs.clone()
        out["policy"] = obs["policy"][:, self.keep]  # indexing copies: the env's is untouched
        if self.empty is not None:
            out["policy"][:, self.empty] = 0.0  # the object's slots come before the phase
        return out

    def get_observations(self) -> Any:
        return self.strip(self._env.get_observations())


class _ViewedSpecialist:
    """A specialist acting through its :class:`_SpecialistView` of the environment."""

    def __init__(self, path: str | Path, view: _SpecialistView) -> None:
        from training.rl.ppo import Policy

        self.view = view
        self.policy = Policy(path, self.view)

    def __call__(self, obs: Any) -> torch.Tensor:
        return self.policy(self.view.strip(obs))


class SpecialistTeam:
    """Specialists in one environment (``_group_settings``), each world acted on by the
    specialist of the axis it is commanded now: the teacher of a generalist, and what
    ``bench/rotation_eval.py`` evaluates when given several specialists (``--flip-s``: the
    teacher's own switches)."""

    def __init__(self, group: list[str | Path], env: Any) -> None:
        from training.rl.ppo import Policy

        self.env = env
        #: the specialist of each of the environment's axes (by index)
        self.by_axis: dict[int, Any] = {}
        for path in group:
            own = specialist_settings(path)
            mine = [a for a in own["axes"] if a in env.cfg.axes]
            if not mine:
                continue
            gaitless = env.cfg.gait and not own.get("gait", False)
            blind = own.get("blind", False) and not env.cfg.blind
            if gaitless or blind:
                policy = _ViewedSpecialist(path, _SpecialistView(env, gaitless, blind))
            else:
                policy = Policy(path, env)
            for a in mine:
                self.by_axis[env.cfg.axes.index(a)] = policy
        missing = [a for i, a in enumerate(env.cfg.axes) if i not in self.by_axis]
        if missing:
            raise ValueError(f"no specialist for the axes {missing} among {list(map(str, group))}")

    def __call__(self, obs: Any) -> torch.Tensor:
        """The actions (clipped to [-1, 1]) of each world's specialist."""
        a = torch.zeros(self.env.num_envs, self.env.num_actions)
        for idx, policy in self.by_axis.items():
            m = torch.as_tensor(self.env.axis_name == idx)
            if m.any():
                a[m] = policy(obs).clamp(-1, 1)[m].to(a.dtype)
        return a


def team_run_settings(
    group: list[str | Path], axes: tuple[str, ...]
) -> tuple[dict[str, Any], str | None]:
    """What rebuilds the environment of specialists switched about ``axes`` (as
    :func:`rotation_run_settings` for one policy): their shared settings, gaits for those of
    ``axes`` whose specialist has one; and their start. Axes, wrists and objects are left to
    the caller."""
    g = _group_settings(group)
    over = {k: v for k, v in g.items() if k not in ("axes", "wrists", "families", "start")}
    if "gait_axes" in over:
        over["gait_axes"] = tuple(a for a in over["gait_axes"] if a in axes)
        if not over["gait_axes"]:  # none of the asked axes has a gait
            for k in ("gait", "gait_axes", "gait_from_switch"):
                over.pop(k, None)
    return over, g.get("start")


def _rollouts(
    env: Any, team: SpecialistTeam, scale: float, s: DistillSettings,
    data: dict[str, list[np.ndarray]], student: GeneralistNet | None = None,
    beta: float = 1.0, seed_offset: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """``s.rounds`` batches of episodes, each world acted on by the specialist of its axis
    (or, with a ``student``, by the student with probability 1 - beta, the specialist
    labelling); with ``s.flip_s`` the axis of half the worlds switches to another every
    flip_s seconds (+-25 %). Appends the kept episodes' (observation, action) rows to
    ``data``: the action is the specialist's change of target within the safety filter's
    limits, over the generalist's scale."""
    from controllers.dexndm.generalist import generalist_obs
    from devices.robots.limits import limit_step

    rng = np.random.default_rng(s.seed + seed_offset)
    T = s.history
    names = env.cfg.axes
    kept = dropped = flips = 0
    rot = []
    ep_id = int(sum(len(np.unique(e)) for e in data["episode"]))
    for _ in range(s.rounds):
        env.reset()
        obs = env.get_observations()
        N, steps = env.num_envs, env.max_episode_length
        # the generalist's own T steps (the env keeps the specialists' history length); a
        # reset fills the history with the first reading, as the env's does
        hq = np.repeat(env.hist_q[:, -1:], T, axis=1)
        ht = np.repeat(env.hist_target[:, -1:], T, axis=1)
        buf_o = np.zeros((steps, N, T * 2 * env.n + 6), np.float32)
        buf_a = np.zeros((steps, N, env.n), np.float32)
        alive = np.ones(N, bool)
        fell = np.zeros(N, bool)
        turned = np.zeros(N)
        length = np.zeros(N, int)
        period = s.flip_s / env.dt
        # a wrist with one specialist has no other axis to switch to
        switching = s.flip_s > 0 and len(team.by_axis) > 1
        next_flip = rng.uniform(0.75, 1.25, N) * period if switching else np.full(N, np.inf)
        next_flip[rng.random(N) < 0.5] = np.inf  # half the worlds keep their first axis
        expert_drives = rng.random(N) < beta if student is not None else np.ones(N, bool)
        for t in range(steps):
            for w in np.flatnonzero(alive & (t >= next_flip)):
                others = [a for a in sorted(team.by_axis) if a != env.axis_name[w]]
                env.set_axis(np.array([w]), names[int(rng.choice(others))])
                next_flip[w] = t + rng.uniform(0.75, 1.25) * period
                flips += 1
            buf_o[t] = generalist_obs(hq, ht, env.axis, env.gravity)
            a = team(obs).numpy().astype(float)
            before = env.target.copy()
            expert = env.action_to_targets(a)
            safe = limit_step(
                expert, before, lower=env.lower, upper=env.upper, max_step=env.max_step
            )
            buf_a[t] = np.clip((safe - before) / scale, -1.0, 1.0)
            target = expert
            if not expert_drives.all():
                with torch.inference_mode():
                    g = student(torch.as_tensor(buf_o[t])).numpy().astype(float)
                own = before + scale * np.clip(g, -1.0, 1.0)
                target = np.where(expert_drives[:, None], expert, own)
            obs, _, _, _ = env.step_targets(target, actions=a)
            hq = np.concatenate([hq[:, 1:], env.hist_q[:, -1:]], axis=1)
            ht = np.concatenate([ht[:, 1:], env.hist_target[:, -1:]], axis=1)
            turned += alive * np.sum(env.last_omega * env.last_axis, axis=1) * env.dt
            length += alive
            fell |= alive & env.last_terminated
            alive &= ~env.last_done
            if not alive.any():
                break
        for w in range(N):
            if fell[w]:
                dropped += 1
                if not (s.keep_dropped or student is not None):
                    continue
            L = length[w]
            data["obs"].append(buf_o[:L, w])
            data["act"].append(buf_a[:L, w])
            data["episode"].append(np.full(L, ep_id))
            ep_id += 1
            kept += 1
        rot.extend((turned / (length * env.dt)).tolist())
    return {"kept": kept, "dropped": dropped, "flips": flips, "rad_s_mean": float(np.mean(rot))}


def fit(
    data: dict[str, np.ndarray],
    cfg: GeneralistConfig,
    s: DistillSettings,
    net: GeneralistNet | None = None,
    epochs: int | None = None,
) -> tuple[GeneralistNet, dict[str, Any]]:
    """Behaviour cloning (MSE on the actions) with a held-out share of the episodes; a
    given ``net`` is trained on (its input normalisation kept) for ``epochs``."""
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    eps = np.unique(data["episode"])
    n_val = max(1, round(s.val_frac * eps.size)) if eps.size > 1 else 0
    val_eps = rng.choice(eps, n_val, replace=False) if n_val else np.array([], int)
    is_val = np.isin(data["episode"], val_eps)
    x = torch.as_tensor(data["obs"], dtype=torch.float32)
    y = torch.as_tensor(data["act"], dtype=torch.float32)
    xt, yt, xv, yv = x[~is_val], y[~is_val], x[is_val], y[is_val]
    wt = torch.as_tensor(row_weights(data["obs"], s.axis_weight)[~is_val], dtype=torch.float32)
    epochs = s.epochs if epochs is None else epochs
    if net is None:
        net = GeneralistNet(cfg)
        net.norm.fit(xt)
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    steps = epochs * max(1, int(np.ceil(len(xt) / s.batch)))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    curve = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        total = 0.0
        for b in range(0, len(xt), s.batch):
            idx = perm[b : b + s.batch]
            w = wt[idx]
            err = torch.mean((net(xt[idx]) - yt[idx]) ** 2, dim=1)
            loss = torch.sum(w * err) / torch.sum(w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(err.detach().sum())
        net.eval()
        with torch.no_grad():
            val = float(torch.mean((net(xv) - yv) ** 2)) if len(xv) else float("nan")
        curve.append({"epoch": epoch + 1, "train_mse": total / len(xt), "val_mse": val})
        log.info("epoch %d: train %.4f, val %.4f", epoch + 1, total / len(xt), val)
    report = {
        "transitions": len(x),
        "train_transitions": len(xt),
        "val_transitions": len(xv),
        "val_episodes": int(n_val),
        "action_var": float(y.var(0).mean()),
        "curve": curve,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return net, report


def distill(
    paths: list[str | Path],
    hand: str,
    out: str | Path,
    s: DistillSettings | None = None,
    dagger_from: str | Path | None = None,
) -> dict[str, Any]:
    """Collect, fit and save; returns the report (also written next to ``out``).

    With ``dagger_from`` (a generalist file) there is no cloning stage: ``s.dagger_rounds``
    more DAgger rounds start from that generalist's net (its size, history and scale), the
    rounds numbered on from its own (beta = 0.5 ** round) and fitted to the new rows only
    (the start's own rows are not needed). The specialists named label, as in its
    distillation; they need not be the same ones.

    The generalist after cloning and after each DAgger round is kept as
    ``snapshot_path(out, "clone" | "daggerN")``, to evaluate a stage or to go on from it
    (``dagger_from``) when a run is cut off."""
    s = s or DistillSettings()
    if dagger_from is not None and s.dagger_rounds < 1:
        raise ValueError("--dagger-from trains only DAgger rounds: ask for at least one")
    torch.set_num_threads(s.threads)
    t0 = time.perf_counter()
    data: dict[str, np.ndarray] | None = None
    if dagger_from is None:
        data, specialists, info = collect(paths, hand, s)
        cfg = GeneralistConfig(
            n=data["act"].shape[1],
            history=s.history,
            hidden=s.hidden,
            blocks=s.blocks,
            action_mode="delta",
            action_scale_rad=info["action_scale_rad"],
        )
        net, fit_report = fit(data, cfg, s)
        dagger = []
    else:
        src = RotationGeneralist.load(dagger_from, hand=hand)
        net, cfg = src.net, src.cfg
        # its observations and net are fixed: its history and size
        s = replace(s, history=cfg.history, hidden=cfg.hidden, blocks=cfg.blocks)
        fit_report = {"curve": [], "dagger_from": str(dagger_from)}
        dagger = list(src.meta["report"].get("dagger", []))
    fit_report["dagger"] = dagger  # filled round by round

    def keep(stage: str) -> None:  # a run cut off goes on with --dagger-from this file
        fit_report["transitions"] = len(data["act"])
        _save(snapshot_path(out, stage), hand, net, cfg, data, specialists, info, s,
              fit_report, t0)  # fmt: skip

    if dagger_from is None:
        keep("clone")
    done = max((d["round"] for d in dagger), default=0)
    for r in range(done, done + s.dagger_rounds):
        beta = 0.5 ** (r + 1)
        net.eval()
        off = 100 * (r + 1)
        more, sums, info = collect(paths, hand, s, student=net, beta=beta, seed_offset=off)
        if data is None:  # dagger_from: the first round's rows are the start
            _check_dagger_start(dagger_from, src, info)
            data, specialists = more, sums
        else:
            more["episode"] = more["episode"] + int(data["episode"].max()) + 1
            data = {k: np.concatenate([data[k], more[k]]) for k in data}
        net, rep = fit(data, cfg, s, net=net, epochs=s.dagger_epochs)
        dagger.append(
            {
                "round": r + 1,
                "beta": beta,
                "added": len(more["act"]),
                "dropped": sum(sp["dropped"] for sp in sums),
                "episodes": sum(sp["episodes"] for sp in sums),
                "val_mse": rep["curve"][-1]["val_mse"] if rep["curve"] else None,
            }
        )
        log.info("DAgger round %d: %s", r + 1, dagger[-1])
        fit_report["curve"] += [{**c, "dagger_round": r + 1} for c in rep["curve"]]
        keep(f"dagger{r + 1}")
    if s.save_data:
        _save_data(Path(out), data)
    return _save(out, hand, net, cfg, data, specialists, info, s, fit_report, t0)


def _check_dagger_start(source: str | Path, src: RotationGeneralist, info: dict[str, Any]) -> None:
    """ValueError unless the specialists' physics and rate limit are the generalist's."""
    scale = src.cfg.action_scale_rad
    if info["action_scale_rad"] != scale:
        raise ValueError(
            f"the specialists' rate limit is {info['action_scale_rad']} rad per step, the "
            f"generalist's scale {scale}: another hand or physics"
        )
    if differences(src.meta["physics"], info["physics"]):
        raise ValueError(f"{source}: trained on other physics than the specialists")


def snapshot_path(generalist: str | Path, stage: str) -> Path:
    """Where ``distill`` keeps the generalist of a stage (``clone``, ``daggerN``) of the
    run writing ``generalist``: ``<stem>_snapshots/<stage>.pt`` beside it."""
    p = Path(generalist)
    return p.with_name(p.stem + "_snapshots") / f"{stage}.pt"


def data_path(generalist: str | Path) -> Path:
    """Where a generalist's rows are kept (``distill`` with ``save_data``)."""
    p = Path(generalist)
    return p.with_name(p.stem + ".data.npz")


def _save_data(out: Path, data: dict[str, np.ndarray]) -> None:
    from assets.atomic import atomic_path

    with atomic_path(data_path(out)) as tmp:  # written in place: no copy of GBs in memory
        np.savez(tmp, **data)


def refit(
    source: str | Path, out: str | Path, s: DistillSettings, warm: bool = False
) -> dict[str, Any]:
    """A new generalist fitted to the rows ``source`` was distilled from (its
    ``NAME.data.npz``, every DAgger round's included) with other fitting settings: the net's
    size, epochs, learning rate, axis weights, seed; from scratch, or with ``warm`` from
    ``source``'s own net (then of its size) for ``s.epochs`` more. The specialists, physics
    and collection settings are ``source``'s (``s``'s are replaced by them)."""
    source = Path(source)
    rows = data_path(source)
    if not rows.exists():
        raise FileNotFoundError(
            f"{rows}: no rows kept for {source}; distil it with --save-data to refit it"
        )
    src = RotationGeneralist.load(source)
    rep = src.meta["report"]
    with np.load(rows) as z:
        data = {k: z[k] for k in ("obs", "act", "episode")}
    if checkpoint.fingerprint(data["obs"], data["act"]) != src.meta.get("data_fingerprint"):
        raise ValueError(f"{rows}: not the rows {source} was fitted to (fingerprints differ)")
    fitting = ("hidden", "blocks", "epochs", "batch", "lr", "weight_decay", "axis_weight", "seed")
    keep = {k: getattr(s, k) for k in (*fitting, "threads")}
    s = DistillSettings(**{**rep["settings"], **keep, "save_data": False})
    torch.set_num_threads(s.threads)
    t0 = time.perf_counter()
    src_cfg = rep["config"]
    cfg = GeneralistConfig(
        n=src_cfg["n"],
        history=src_cfg["history"],
        hidden=s.hidden,
        blocks=s.blocks,
        action_mode=src_cfg["action_mode"],
        action_scale_rad=src_cfg["action_scale_rad"],
    )
    net = src.net if warm else None
    if warm and (src.cfg.hidden, src.cfg.blocks) != (cfg.hidden, cfg.blocks):
        raise ValueError(
            f"a warm refit keeps {source}'s net: hidden {src.cfg.hidden}, blocks "
            f"{src.cfg.blocks} (asked: {cfg.hidden}, {cfg.blocks})"
        )
    net, fit_report = fit(data, cfg, s, net=net)
    fit_report["dagger"] = rep.get("dagger", [])
    fit_report["refit_of"] = str(source)
    fit_report["refit_warm"] = warm
    info = {"physics": src.meta["physics"], "action_scale_rad": cfg.action_scale_rad}
    return _save(out, src.meta["hand"], net, cfg, data, rep["specialists"], info, s, fit_report, t0)


def _save(
    out: str | Path, hand: str, net: GeneralistNet, cfg: GeneralistConfig,
    data: dict[str, np.ndarray], specialists: list[dict[str, Any]], info: dict[str, Any],
    s: DistillSettings, fit_report: dict[str, Any], t0: float,
) -> dict[str, Any]:  # fmt: skip
    from assets.atomic import write_atomic

    # the start the generalist is evaluated and generates data from: its specialists' own
    shared = {k: _shared(specialists, k) for k in ("rest_q", "scale_range")}
    report = {
        "hand": hand,
        "specialists": specialists,
        "settings": asdict(s),
        "config": asdict(cfg),
        **fit_report,
        "collect_and_fit_s": round(time.perf_counter() - t0, 1),
    }
    meta = {
        "hand": hand,
        "physics": info["physics"],
        "data_fingerprint": checkpoint.fingerprint(data["obs"], data["act"]),
        "env": {
            "action_mode": "delta",
            "action_scale_rad": cfg.action_scale_rad,
            "history": cfg.history,
            "physics_model": info["physics"].get("name") if info["physics"] else None,
            "rest_q": shared["rest_q"] or None,
            # the objects lay in the palm for every specialist (Policy.ENV_FLAGS): so here
            **({"lie": True} if all(sp.get("lie") for sp in specialists) else {}),
        },
        "report": {k: v for k, v in report.items() if k != "curve"},
        # what the specialists covered, the generalist's defaults for data generation
        "trained": {
            **{
                k: sorted({v for sp in specialists for v in sp[k]})
                for k in ("axes", "wrists", "families")
            },
            "start": sorted({sp["start"] for sp in specialists}),
            "scale_range": shared["scale_range"],
        },
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    RotationGeneralist(net, meta).save(out, meta)
    write_atomic(out.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    return report


def _shared(specialists: list[dict[str, Any]], key: str) -> list[float] | None:
    """The specialists' common value of a setting; None where they differ (the task's
    default then applies to the generalist)."""
    values = {tuple(sp[key]) for sp in specialists}
    if len(values) > 1:
        log.warning("specialists differ in %s: the generalist takes the task's default", key)
        return None
    return list(values.pop())


# -- running a generalist in the rotate environment ------------------------------------------
def is_generalist(path: str | Path) -> bool:
    """Whether ``path`` holds a rotation generalist (else: a PPO policy or nothing)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged file is the loaders' to report
        return False
    return isinstance(raw, dict) and raw.get("format") == GENERALIST_FORMAT


def generalist_env_overrides(path: str | Path) -> dict[str, Any]:
    ck = checkpoint.load(path, format=GENERALIST_FORMAT, what="rotation generalist")
    env = dict(ck.meta.get("env", {}))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in env.items() if v is not None}


class EnvGeneralist:
    """A generalist acting in a rotate environment (reads the env's histories, axis and
    gravity; the observation the env hands a PPO actor is ignored)."""

    def __init__(self, path: str | Path, env: Any) -> None:
        self.gen = RotationGeneralist.load(path, hand=env.cfg.hand, physics=env.physics())
        if env.cfg.action_mode != self.gen.cfg.action_mode:
            raise ValueError("the environment's action mode is not the generalist's")
        self.env = env
        self.meta = self.gen.meta

    def __call__(self, obs: Any) -> torch.Tensor:
        e = self.env
        return torch.as_tensor(self.gen.act(e.hist_q, e.hist_target, e.axis, e.gravity))


def rotation_trained_settings(path: str | Path) -> dict[str, Any]:
    """The axes, wrists, object families (and their scales) and start a rotation policy was
    trained on."""
    from training.rl.ppo import POLICY_FORMAT

    if is_generalist(path):
        ck = checkpoint.load(path, format=GENERALIST_FORMAT, what="rotation generalist")
        trained = ck.meta.get("trained", {})
    else:
        ck = checkpoint.load(path, format=POLICY_FORMAT, what="RL policy")
        trained = ck.meta.get("env", {})
    out: dict[str, Any] = {
        k: tuple(trained[k])
        for k in ("axes", "wrists", "families", "scale_range")
        if trained.get(k)
    }
    start = trained.get("start")
    if isinstance(start, list):  # a generalist: one start if its specialists shared one
        start = start[0] if len(start) == 1 else None
    if start:
        out["start"] = start
    return out


def rotation_run_settings(path: str | Path) -> tuple[dict[str, Any], str | None]:
    """What rebuilds the environment a rotation policy (specialist or generalist) acts in:
    its observation and action settings plus the object sizes it was trained on, and its
    start (None if not recorded). Axes, wrists and objects are left to the caller."""
    over = rotation_env_overrides(path)
    trained = rotation_trained_settings(path)
    if "scale_range" in trained:
        over["scale_range"] = trained["scale_range"]
    return over, trained.get("start")


def rotation_policy(path: str | Path, env: Any) -> Any:
    """A PPO specialist or a generalist, as a callable(obs) -> actions for ``env``."""
    from training.rl.ppo import Policy

    return EnvGeneralist(path, env) if is_generalist(path) else Policy(path, env)


def rotation_env_overrides(path: str | Path) -> dict[str, Any]:
    from training.rl.ppo import Policy

    return generalist_env_overrides(path) if is_generalist(path) else Policy.env_overrides(path)
