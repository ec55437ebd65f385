"""The DexNDM controller: the hand turns the held object about the axis the operator picks.

Each tick the rotation generalist (:mod:`controllers.dexndm.generalist`) reads the last
``T`` joint angles and targets, the wrist orientation (gravity in the palm frame, from the
hand backend's palm pose: a fixed mount, the simulated wrist or the arm) and the commanded
axis (``Command.axis``: the Quest's buttons or controller orientation, the app's axis
buttons) and asks for a target step; the residual policy (:mod:`controllers.dexndm.
residual`), trained through a neural dynamics model of this hand, adds its correction
(DexNDM Sec. 3.3). Without an axis the hand holds its targets.

Live settings: the residual on or off and its scale, and where the axis comes from (the
command, or a fixed palm axis). ``info``: the axis in use and how far it is from those the
generalist was trained about (``axis_off_deg``), the wrist's from those it was trained at
(``wrist_off_deg``: gravity in the palm frame; a reset warns past ``WRIST_WARN_DEG``), the
residual's size, and the dynamics model's one-step prediction error (its prediction of this
tick's joint angles from the last ``W`` ticks against the measured ones): how well the model
knows this hand; with an ensemble residual, how far its members disagree
(``residual_spread_rad``).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assets import CHECKPOINTS_DIR
from controllers.base import CONTROLLERS, Controller, ControllerConfig, ControllerUnavailable, live
from devices.tick import PALM_AXES, Command, HandState, axis_name

log = logging.getLogger(__name__)

#: Where DexNDM's trained models ship (the generalist with the RL policies).
DEXNDM_DIR = CHECKPOINTS_DIR / "dexndm"
AXIS_SOURCES = ("command", *PALM_AXES)
#: a wrist this far (degrees of gravity in the palm frame) from every wrist the generalist
#: was trained at is warned of at reset: beyond its training, it guesses
WRIST_WARN_DEG = 30.0
#: ``residual`` / ``ndm`` setting values: the shipped file, or none.
SHIPPED, NONE = "", "none"


#: ``generalist`` settings naming another shipped generalist than the default (``""``: +-z,
#: trained on with PPO after distillation; the shipped residuals were trained for it):
#: ``six_axes``, distilled from the six palm-up specialists (+-x, +-y, +-z) and the base-up
#: (fingers-down) -z one; ``fast``, +-z distilled from a blind +z specialist (one that never
#: saw the cube, trained on from ``rotate_leap_zp_fast.pt``) and the -z one: about twice the
#: default's speed about +z in ``bench/rotation_eval.py`` (every randomization on).
GENERALIST_KINDS = ("six_axes", "fast")


def generalist_path(hand: str, kind: str = SHIPPED) -> Path:
    """A shipped rotation generalist of a hand: the default, or one of
    :data:`GENERALIST_KINDS`."""
    if kind != SHIPPED and kind not in GENERALIST_KINDS:
        raise ValueError(f"no shipped generalist {kind!r}; known: {', '.join(GENERALIST_KINDS)}")
    return CHECKPOINTS_DIR / "rl" / f"rotate_generalist{'_' + kind if kind else ''}_{hand}.pt"


#: ``residual`` settings naming a shipped residual by the dynamics model it went through
#: (``_effort``: a model that also predicts the actuators' torques, the residual trained to
#: match them as well as the angles; ``joint_wise_blend``: that one plus a quarter of the
#: angle-only one, :func:`controllers.dexndm.residual.blend`, the default).
RESIDUAL_KINDS = (
    "joint_wise",
    "whole_hand",
    "joint_wise_effort",
    "whole_hand_effort",
    "joint_wise_blend",
)
#: the kind ``residual=""`` runs (none where a hand has no such file)
DEFAULT_RESIDUAL = "joint_wise_blend"


def residual_path(hand: str, kind: str = DEFAULT_RESIDUAL) -> Path:
    """The shipped residual policy of a hand trained through its ``kind`` dynamics model."""
    return DEXNDM_DIR / f"residual_{kind}_{hand}.pt"


def base_policy_mismatch(
    residual_meta: dict[str, Any], gen_meta: dict[str, Any], gen_path: str | Path
) -> str:
    """A residual corrects the generalist whose rollouts it was trained on (its meta's
    ``base_policy``, by the data that generalist was distilled from): a sentence when the
    running generalist is another one, else "" (also when either record is missing)."""
    base = residual_meta.get("base_policy") or {}
    want, have = base.get("data_fingerprint"), gen_meta.get("data_fingerprint")
    if not want or not have or want == have:
        return ""
    return (
        f"the residual was trained for another generalist ({base.get('path')}, "
        f"{want[:19]}) than the one running ({Path(gen_path).name}, {have[:19]}): "
        "its corrections may not fit; train one for this generalist (bench/dexndm_pipeline.sh)"
    )


def gravity_in_palm(wrist: np.ndarray) -> np.ndarray:
    """Unit gravity in the palm frame from the palm's world pose (4, 4)."""
    return np.asarray(wrist)[:3, :3].T @ np.array([0.0, 0.0, -1.0])


@dataclass
class DexNDMControllerConfig(ControllerConfig):
    """DexNDM (see the module docstring).

    Attributes:
        generalist: the rotation generalist ("" = the shipped default, ``six_axes`` = the
            shipped one that knows all six palm axes, and -z with the fingers down
            (:data:`GENERALIST_KINDS`), else a file).
        residual: the residual policy ("" = the shipped default, ``joint_wise_blend``,
            when there is one and it was trained for the running generalist;
            ``joint_wise`` / ``whole_hand`` = the shipped one trained through that model,
            ``joint_wise_effort`` / ``whole_hand_effort`` = through that model with
            torques, ``joint_wise_blend`` = the joint-wise torque one plus a quarter of the
            angle-only one, the default; ``none`` = the generalist alone, else a file).
        ndm: the dynamics model for the prediction-error readout ("" = the one the
            residual was trained through, ``none`` = no readout).
        residual_on / residual_scale: use the residual, and how much of it.
        axis_source: ``command`` (``Command.axis``) or a fixed palm axis (``+z`` ...).
    """

    generalist: str = SHIPPED
    residual: str = SHIPPED
    ndm: str = SHIPPED
    residual_on: bool = live(True, "bool", label="residual", help="add the learned correction")
    residual_scale: float = live(
        1.0, "float", label="residual scale", low=0.0, high=2.0, step=0.05, plot=True
    )
    axis_source: str = live(
        "command",
        "choice",
        label="axis",
        help="the operator's axis (buttons, controller) or a fixed palm axis",
        choices=AXIS_SOURCES,
    )


@CONTROLLERS.register("dexndm")
class DexNDMController(Controller):
    """In-hand rotation about the commanded axis: generalist + residual."""

    Config = DexNDMControllerConfig
    command_fields = frozenset({"axis"})

    @classmethod
    def availability(cls, hand: str) -> str | None:
        path = generalist_path(hand)
        if not path.is_file():
            return (
                f"no rotation generalist for {hand} ({path.name}); distil one with "
                f"'dexteleop train rotation-generalist --hand {hand} ...'"
            )
        return None

    def __init__(self, config: DexNDMControllerConfig) -> None:
        super().__init__(config)
        self.config: DexNDMControllerConfig = config
        import torch

        from controllers.dexndm.generalist import (
            CheckpointError,
            RotationGeneralist,
            generalist_obs,
        )
        from controllers.dexndm.ndm import load_ndm
        from controllers.dexndm.residual import load_residual

        self._torch = torch
        self._obs = generalist_obs
        hand = config.hand
        if config.generalist in (SHIPPED, *GENERALIST_KINDS):
            gpath = generalist_path(hand, config.generalist)
        else:
            gpath = Path(config.generalist)
        try:
            self.gen = RotationGeneralist.load(gpath, hand=hand)
        except CheckpointError as e:
            raise ControllerUnavailable(str(e)) from None
        self._trained_on(self.gen.meta.get("physics"))
        #: why the residual may not fit (it was trained for another generalist), else ""
        self.residual_mismatch = ""
        if any(self.gen.axis_off_deg(v) > 1.0 for v in PALM_AXES.values()):  # 0 if unknown
            # an operator's button for an axis it never turned about gives a guess
            known = self.gen.trained_axes.values()
            self.notes.append(
                f"the generalist was trained about {', '.join(map(axis_name, known))}"
                " only: other axes are beyond it (info: axis_off_deg)"
            )
        self.residual = None
        self.residual_meta: dict[str, Any] = {}
        rpath = None
        if config.residual == SHIPPED:
            rpath = residual_path(hand) if residual_path(hand).is_file() else None
        elif config.residual in RESIDUAL_KINDS:  # the shipped one through that kind of NDM
            rpath = residual_path(hand, config.residual)
        elif config.residual != NONE:
            rpath = Path(config.residual)
        if rpath is not None:
            try:
                self.residual, self.residual_meta = load_residual(rpath, hand=hand)
            except CheckpointError as e:
                raise ControllerUnavailable(str(e)) from None
            mismatch = base_policy_mismatch(self.residual_meta, self.gen.meta, gpath)
            if mismatch and config.residual == SHIPPED:
                # the default corrects the default generalist only; another runs alone
                self.residual, self.residual_meta, rpath = None, {}, None
                self.notes.append(
                    f"no shipped residual for this generalist ({gpath.name}): it runs alone "
                    "(residual=KIND or a file adds one anyway)"
                )
            elif mismatch:
                self.notes.append(mismatch)
                self.residual_mismatch = mismatch
        self.ndm = None
        npath = None
        if config.ndm not in (SHIPPED, NONE):
            npath = Path(config.ndm)
        elif config.ndm == SHIPPED and self.residual_meta.get("ndm"):
            candidate = Path(self.residual_meta["ndm"])
            if not candidate.is_absolute():
                candidate = CHECKPOINTS_DIR.parent.parent / candidate
            npath = candidate if candidate.is_file() else None
        if npath is not None:
            try:
                self.ndm, _ = load_ndm(npath, hand=hand)
            except CheckpointError as e:
                raise ControllerUnavailable(str(e)) from None
        self.residual_path = rpath
        self.ndm_path = npath
        T = self.gen.cfg.history
        W = self.ndm.cfg.window if self.ndm is not None else 0
        # the residual may see fewer (or more) steps than the generalist
        T_res = self.residual.cfg.history if self.residual is not None else 0
        self._len = max(T, T_res, W + 1)
        self._hq: deque[np.ndarray] = deque(maxlen=self._len)
        #: the generalist's own targets (without the residual), as in simulation
        self._ht: deque[np.ndarray] = deque(maxlen=self._len)
        #: the targets the hand was sent (the dynamics model's inputs)
        self._hs: deque[np.ndarray] = deque(maxlen=self._len)
        self._res_prev = np.zeros(len(self.hand.joint_names))

    def sim_start(self) -> np.ndarray | None:
        """The generalist's rest pose: its specialists started the object in it."""
        rest = self.gen.meta.get("env", {}).get("rest_q")
        return None if rest is None else np.asarray(rest, dtype=float)

    # -- the loop ---------------------------------------------------------------------------
    def reset(self, state: HandState) -> None:
        off = self.gen.wrist_off_deg(gravity_in_palm(state.wrist))
        if off > WRIST_WARN_DEG:
            known = ", ".join(self.gen.trained_wrists or ())
            log.warning(
                "the hand's wrist is %.0f degrees from those the generalist was trained at "
                "(%s): it may drop the object (info: wrist_off_deg)",
                off,
                known,
            )
        self._hq.clear()
        self._ht.clear()
        self._hs.clear()
        self._res_prev = np.zeros(len(self.hand.joint_names))
        for _ in range(self._len):
            self._hq.append(np.asarray(state.q, dtype=float).copy())
            self._ht.append(np.asarray(state.target, dtype=float).copy())
            self._hs.append(np.asarray(state.target, dtype=float).copy())

    def axis(self, command: Command) -> np.ndarray | None:
        """The axis in use (palm frame, unit) or None."""
        src = self.config.axis_source
        if src != "command":
            return np.asarray(PALM_AXES[src], dtype=float)
        if command is None or command.axis is None:
            return None
        a = np.asarray(command.axis, dtype=float)
        norm = float(np.linalg.norm(a))
        if not np.isfinite(norm) or norm < 1e-6:
            return None
        return a / norm

    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict[str, Any]]:
        if not self._hq:
            self.reset(state)
        q = np.asarray(state.q, dtype=float)
        sent = np.asarray(state.target, dtype=float)
        # The residual corrects each target once: the generalist integrates its own steps
        # (its base target: the last sent one without the last correction), as it did in
        # simulation, and sees those; the hand gets base + correction.
        last = sent - self._res_prev
        # a pair is (q_t, the target sent at t-1): what the hand reads at tick t
        self._hq.append(q.copy())
        self._ht.append(last.copy())
        self._hs.append(sent.copy())
        info: dict[str, Any] = {}
        hq, ht, hs = np.array(self._hq), np.array(self._ht), np.array(self._hs)
        if self.ndm is not None:
            W = self.ndm.cfg.window
            torch = self._torch
            with torch.inference_mode():
                pred = self.ndm(
                    torch.as_tensor(hq[None, -W - 1 : -1], dtype=torch.float32),
                    torch.as_tensor(hs[None, -W:], dtype=torch.float32),
                )[0].numpy()
            info["ndm_error_rad"] = float(np.mean(np.abs(pred - q)))
        axis = self.axis(command)
        if axis is None:
            info.update(axis="none", residual_rad=0.0)
            self._res_prev = np.zeros_like(sent)
            return sent.copy(), info
        gravity = gravity_in_palm(state.wrist)
        T = self.gen.cfg.history
        obs = self._obs(hq[None, -T:], ht[None, -T:], axis[None], gravity[None])
        a = self.gen.act_obs(obs)[0]
        step = self.gen.cfg.action_scale_rad * a
        target = last + step
        res = np.zeros_like(target)
        if self.residual is not None and self.config.residual_on:
            torch = self._torch
            Tr = self.residual.cfg.history
            # the generalist's observation, or the same with the residual's own T steps
            r_obs = (
                obs
                if Tr == T
                else self._obs(hq[None, -Tr:], ht[None, -Tr:], axis[None], gravity[None])
            )
            with torch.inference_mode():
                res_t, spread = self.residual.correction(
                    torch.as_tensor(r_obs, dtype=torch.float32),
                    torch.as_tensor(step[None], dtype=torch.float32),
                )
            res = res_t[0].numpy().astype(float)
            # an ensemble (members trained alike): how far they disagree; a blend's members
            # were trained for different objectives, so theirs says nothing of the data
            if self.residual.cfg.members > 1 and not self.residual.cfg.weights:
                info["residual_spread_rad"] = float(spread[0])
            res = self.config.residual_scale * res
            target = target + res
        self._res_prev = res
        info.update(
            axis=axis_name(axis),
            axis_x=float(axis[0]),
            axis_y=float(axis[1]),
            axis_z=float(axis[2]),
            axis_off_deg=self.gen.axis_off_deg(axis),
            wrist_off_deg=self.gen.wrist_off_deg(gravity),
            residual_rad=float(np.max(np.abs(res))),
        )
        return target, info
