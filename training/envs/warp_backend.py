"""MuJoCo Warp physics behind the :class:`~training.envs.base.Backend` surface.

All worlds live in one ``mujoco_warp`` ``Data`` on a Warp device: a CUDA GPU for thousands of
worlds (the paper's scale), or Warp's CPU backend (slow, but the same kernels: what the tests
run on a machine without a GPU). The tasks do not change: they read and write host arrays as
with :class:`~training.envs.base.BatchBackend`, and every device operation (reset, forward,
set_const, step) first uploads the host state and per-world model fields and afterwards
downloads the state and the derived fields the tasks read. At the control rate that is a few
small copies per 25 physics steps.

Differences from ``mujoco.batch`` that the tasks see:

- Per-world model fields exist only where MuJoCo Warp batches them (mass and inertia, geom
  sizes, bounds and friction, actuator gains, gravity, ...); the geom *type* is one per model,
  so the Anygrasp task on this backend needs object families of one shape (all boxes, for
  instance), and says so.
- Physics runs in float32 (MuJoCo's C library: float64); the host arrays stay float64.
- MuJoCo Warp does not reset diverged worlds itself: :meth:`WarpBackend.step` finds worlds
  with non-finite or runaway (> 1e10) positions, velocities or accelerations, resets them to
  the model's defaults and reports them, as MuJoCo does for ``mujoco.batch``.
"""

from __future__ import annotations

import mujoco
import numpy as np

from training.envs.base import DERIVED_FIELDS, STATE_FIELDS, Backend

#: Model fields made per-world from the start: what the tasks randomise, plus what
#: ``set_const`` derives from masses and inertias (it must have a slot per world too).
PER_WORLD_FIELDS = (
    "actuator_gainprm",
    "actuator_biasprm",
    "body_mass",
    "body_inertia",
    "body_ipos",
    "body_iquat",
    "body_subtreemass",
    "body_invweight0",
    "dof_invweight0",
    "actuator_acc0",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
    "geom_friction",
)
#: MuJoCo's own divergence threshold (mjMAXVAL).
MAX_VAL = 1e10


def warp_available() -> str | None:
    """None when MuJoCo Warp imports, else why not (for a clear error)."""
    try:
        import mujoco_warp  # noqa: F401
        import warp  # noqa: F401
    except ImportError as e:
        return f"MuJoCo Warp is not installed ({e}); pip install 'dexteleop[gpu]'"
    return None


class WarpBackend(Backend):
    """``mujoco_warp`` worlds on a Warp device (see the module docstring).

    Args:
        model: the compiled scene (host).
        nsim: worlds.
        device: a Warp device (``"cuda:0"``, ``"cpu"``); default: CUDA when there is one.
        nconmax / njmax: contacts per world (MuJoCo Warp pools ``nconmax * nsim`` for all
            worlds) and constraint rows per world (a hard cap). Its own guesses for this
            scene (45 and 64) leave little room over what a grasp reaches (measured: 10
            contacts, 56 rows); what overflows is lost, with a warning.
    """

    per_world_geom_type = False

    def __init__(
        self,
        model: mujoco.MjModel,
        nsim: int,
        device: str | None = None,
        nconmax: int = 96,
        njmax: int = 384,
    ) -> None:
        why = warp_available()
        if why:
            raise RuntimeError(why)
        import mujoco_warp as mjw
        import warp as wp

        if nsim < 1:
            raise ValueError("nsim must be >= 1")
        wp.config.quiet = True
        wp.init()
        self.wp, self.mjw = wp, mjw
        self.device = device or ("cuda" if wp.is_cuda_available() else "cpu")
        self.model = model
        self.nsim = nsim
        with wp.ScopedDevice(self.device):
            self.m = mjw.put_model(model, batch_sizes={f: nsim for f in PER_WORLD_FIELDS})
            # gravity lives in the options: give it a slot per world by hand
            g = np.tile(np.asarray(model.opt.gravity, np.float32), (nsim, 1))
            self.m.opt.gravity = wp.array(g, dtype=wp.vec3)
            self.m.opt.gravity._is_batched = True
            d0 = mujoco.MjData(model)
            mujoco.mj_forward(model, d0)
            self.d = mjw.put_data(model, d0, nworld=nsim, nconmax=nconmax, njmax=njmax)
        self._host: dict[str, np.ndarray] = {}  # data fields, (N, *MjData shape)
        self._fields: dict[str, np.ndarray] = {}  # model fields, (N, *MjModel shape)
        self._sent: dict[str, np.ndarray] = {}  # model fields as last uploaded
        self._shapes: dict[str, tuple] = {}  # the device arrays' numpy shapes
        self._data_template = mujoco.MjData(model)
        for name in STATE_FIELDS + DERIVED_FIELDS:
            self.state(name)
        self._pull()

    # -- host mirrors -------------------------------------------------------------------------
    def _dev_data(self, name: str):
        arr = getattr(self.d, name, None)
        if arr is None or not hasattr(arr, "numpy"):
            raise KeyError(f"MuJoCo Warp's Data has no array {name!r}")
        return arr

    @staticmethod
    def _split(name: str, model) -> tuple[object, str]:
        """(the object holding field ``name``, its attribute): ``opt.X`` lives in the options."""
        return (model.opt, name[4:]) if name.startswith("opt.") else (model, name)

    def _dev_model(self, name: str):
        arr = getattr(*self._split(name, self.m), None)
        if arr is None or not hasattr(arr, "numpy"):
            raise KeyError(f"MuJoCo Warp's Model has no array {name!r}")
        return arr

    def state(self, name: str) -> np.ndarray:
        if name not in self._host:
            shape = np.shape(getattr(self._data_template, name))
            dev = self._dev_data(name).numpy()
            self._shapes[name] = dev.shape
            host = np.zeros((self.nsim, *shape))
            host[:] = dev.reshape(host.shape)
            self._host[name] = host
        return self._host[name]

    def model_field(self, name: str) -> np.ndarray:
        if name not in self._fields:
            dev = self._dev_model(name)
            if not getattr(dev, "_is_batched", False) or dev.shape[0] != self.nsim:
                raise ValueError(
                    f"MuJoCo Warp keeps {name!r} one per model, not per world (per-world "
                    f"fields here: {', '.join(PER_WORLD_FIELDS)}, opt.gravity)"
                )
            shape = np.shape(getattr(*self._split(name, self.model)))
            values = dev.numpy()
            self._shapes[name] = values.shape
            host = np.zeros((self.nsim, *shape))
            host[:] = values.reshape(host.shape)
            self._fields[name] = host
            self._sent[name] = host.copy()
        return self._fields[name]

    def _push(self) -> None:
        for name in self._host:  # the state the tasks may write (derived fields are outputs)
            if name not in DERIVED_FIELDS:
                self._upload(self._dev_data(name), self._host[name], name)
        for name, host in self._fields.items():  # model fields: only those written since
            if not np.array_equal(host, self._sent[name]):
                self._upload(self._dev_model(name), host, name)
                np.copyto(self._sent[name], host)

    def _upload(self, dev, host: np.ndarray, name: str) -> None:
        dev.assign(host.reshape(self._shapes[name]).astype(np.float32))

    def _pull(self) -> None:
        for name, host in self._host.items():
            np.copyto(host, self._dev_data(name).numpy().reshape(host.shape))

    def _mask(self, ids: np.ndarray):
        mask = np.zeros(self.nsim, bool)
        mask[np.asarray(ids, dtype=int)] = True
        return self.wp.array(mask, dtype=bool, device=self.device)

    # -- operations ---------------------------------------------------------------------------
    def set_const(self, ids: np.ndarray) -> None:
        self._push()
        with self.wp.ScopedDevice(self.device):
            self.mjw.set_const(self.m, self.d)
        self._pull()
        # set_const rewrote derived model fields (bounds, subtree masses, inverse weights):
        # the mirrors take them, so that a later host write does not upload stale values
        for name, host in self._fields.items():
            host[:] = self._dev_model(name).numpy().reshape(host.shape)
            np.copyto(self._sent[name], host)

    def reset(self, ids: np.ndarray) -> None:
        self._push()
        with self.wp.ScopedDevice(self.device):
            self.mjw.reset_data(self.m, self.d, reset=self._mask(ids))
        self._pull()

    def forward(self, ids: np.ndarray) -> None:
        self._push()
        with self.wp.ScopedDevice(self.device):
            self.mjw.forward(self.m, self.d)
        self._pull()

    def step(self, nstep: int) -> np.ndarray:
        self._push()
        with self.wp.ScopedDevice(self.device):
            for _ in range(nstep):
                self.mjw.step(self.m, self.d)
            # a step leaves positions integrated but kinematics from before the last substep;
            # mujoco.batch ends at the velocity stage: make sites current the same way
            self.mjw.kinematics(self.m, self.d)
            qacc = self.d.qacc.numpy()
        self._pull()
        bad = np.zeros(self.nsim, bool)
        for v in (self._host["qpos"], self._host["qvel"], qacc):
            v = v.reshape(self.nsim, -1)
            bad |= ~np.all(np.isfinite(v), axis=1) | np.any(np.abs(v) > MAX_VAL, axis=1)
        if bad.any():  # as MuJoCo does: back to the model's defaults
            ids = np.flatnonzero(bad)
            self.reset(ids)
            self.forward(ids)
        return bad

    # -- single worlds --------------------------------------------------------------------------
    def world_data(self, i: int, model: mujoco.MjModel) -> mujoco.MjData:
        d = mujoco.MjData(model)
        for name in STATE_FIELDS:
            getattr(d, name)[:] = self._host[name][i].reshape(getattr(d, name).shape)
        mujoco.mj_kinematics(model, d)
        return d

    def world(self, i: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        import copy

        m = copy.deepcopy(self.model)
        for name, host in self._fields.items():
            setattr(*self._split(name, m), host[i])
        # this world's derived constants, on scratch data (mj_setConst moves it to qpos0)
        mujoco.mj_setConst(m, mujoco.MjData(m))
        d = self.world_data(i, m)
        mujoco.mj_forward(m, d)
        return m, d
