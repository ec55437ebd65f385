"""The controller interface: turns the operator's Command into a joint target each tick."""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any, ClassVar, Literal

import numpy as np

from assets.hands import Hand, load_hand
from assets.registry import Registry
from devices.tick import Command, HandState

#: Every controller by name: ``CONTROLLERS.make("retarget", hand="leap")``.
CONTROLLERS: Registry[Controller] = Registry("controller")


class ControllerUnavailable(RuntimeError):
    """The controller cannot run (e.g. not trained yet); the message says why."""


#: What kind of value a live setting holds; the app picks a widget per kind.
SettingKind = Literal["float", "int", "bool", "choice", "text"]


@dataclasses.dataclass(frozen=True)
class LiveSetting:
    """A setting a controller lets the operator change while driving.

    Declared on the controller's Config with :func:`live`; the app builds a widget from it
    (a slider for a bounded float, a spin box for an int, a combo box for a choice, a code
    editor for text). No Qt here: this is a description, not a widget. A rotation axis is not
    a setting: it arrives in ``Command.axis`` (the device's buttons or orientation, or the
    app's axis buttons), for controllers that list ``axis`` in ``command_fields``.

    Attributes:
        name: the Config field. label: what the operator reads. help: one sentence.
        kind: the value's kind. low/high: bounds of float/int settings (inclusive).
        step: slider/spin increment. choices: allowed values of choice settings.
        plot: draw the value in the app's live plots (numeric kinds).
    """

    name: str
    kind: SettingKind
    label: str = ""
    help: str = ""
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    plot: bool = False

    def __post_init__(self) -> None:
        kinds = typing.get_args(SettingKind)
        if self.kind not in kinds:
            raise ValueError(
                f"setting {self.name!r}: kind must be one of {kinds}, got {self.kind!r}"
            )

    def check(self, value: Any) -> Any:
        """The value converted to the setting's type; ValueError (saying why) if invalid."""
        name = self.label or self.name
        if self.kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
            if self.kind == "int":
                if float(value) != int(value):
                    raise ValueError(f"{name} must be a whole number, got {value}")
                value = int(value)
            else:
                value = float(value)
            if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high
            ):
                raise ValueError(f"{name} must be in [{self.low}, {self.high}], got {value}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{name} must be one of {list(self.choices)}, got {value!r}")
            return value
        if not isinstance(value, str):
            raise ValueError(f"{name} must be text, got {type(value).__name__}")
        return value


def live(
    default: Any,
    kind: SettingKind,
    *,
    label: str = "",
    help: str = "",
    low: float | None = None,
    high: float | None = None,
    step: float | None = None,
    choices: tuple[str, ...] = (),
    plot: bool = False,
) -> Any:
    """A Config field the operator may change while the controller runs::

    guidance: float = live(1.0, "float", label="guidance", low=0, high=10, plot=True)
    """
    meta = LiveSetting("", kind, label, help, low, high, step, tuple(choices), plot)
    return dataclasses.field(default=default, metadata={"live": meta})


@dataclasses.dataclass
class ControllerConfig:
    """Settings every controller has. Subclasses add their own fields.

    Every value is checked when the config is built (:func:`check_settings`), however it
    arrives: ``--set``, the app's saved settings, a replayed recording's, a live change
    (:meth:`Controller.update` rebuilds the config). A bad value is refused before the
    controller is built (no model loaded), with the setting's name and what it accepts.

    Attributes:
        hand: the hand the controller drives (``leap``, ``allegro``).
    """

    hand: str = "leap"

    def __post_init__(self) -> None:
        check_settings(self)


def check_settings(config: Any) -> None:
    """Check (and convert, e.g. 1 -> 1.0 for a float) every field of a controller config in
    place: a live setting against its :class:`LiveSetting` (type, finite, range, choices),
    any other against its annotation (``bool``, ``int``, ``float`` (finite), ``str``,
    ``X | None``). Raises ValueError: ``"dexgen setting guidance must be in [0.0, 1.0],
    got 5.0"``."""
    hints = _type_hints(type(config))
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        meta = f.metadata.get("live")
        try:
            if meta is not None:
                checked = dataclasses.replace(meta, name=f.name, label=f.name).check(value)
            else:
                checked = _check_type(f.name, hints.get(f.name), value)
        except ValueError as e:
            raise ValueError(f"{_controller_name(type(config))} setting {e}") from None
        if checked is not value:
            object.__setattr__(config, f.name, checked)


@functools.cache
def _type_hints(config_cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config_cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations (a local test class): unchecked
        return {}


_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _check_type(name: str, annotation: Any, value: Any) -> Any:
    """``value`` as the type ``annotation`` names (int -> float; integral float -> int)."""
    if annotation is None:
        return value
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    allowed = allowed or (annotation,)
    if value is None and type(None) in allowed:
        return None
    simple = [t for t in allowed if t in _TYPE_NAMES]
    if len(simple) != len([t for t in allowed if t is not type(None)]):
        return value  # a type this check does not know: the controller checks it
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if number and not math.isfinite(value) and (int in simple or float in simple):
        raise ValueError(f"{name} must be finite, got {value}")
    for t in simple:
        if t is bool and isinstance(value, bool):
            return value
        if t is float and number:
            return float(value)
        if t is int and number and float(value) == int(value):
            return int(value)
        if t is str and isinstance(value, str):
            return value
    kinds = [_TYPE_NAMES[t] for t in simple] + ["none"] * (type(None) in allowed)
    raise ValueError(f"{name} must be {' or '.join(kinds)}, got {value!r}")


def _controller_name(config_cls: type) -> str:
    """The registered name of the controller configured by ``config_cls`` (for messages)."""
    for name in CONTROLLERS.names():
        if CONTROLLERS.get(name).Config is config_cls:
            return name
    return config_cls.__name__


class Controller(abc.ABC):
    """Base class.

    ``step`` is called once per control tick with the measured state and the latest
    command; it returns a (n,) joint target in the hand's joint order and an ``info``
    dict of floats/strings for plots and recordings. The target is *not* trusted: the
    safety filter clips and rate-limits it before any hand sees it.

    Settings listed in ``live_settings`` can be changed while running through
    :meth:`update`, which the session applies between ticks.
    """

    Config: ClassVar[type] = ControllerConfig

    #: The :class:`~devices.tick.Command` fields ``step`` reads (of ``keypoints``, ``joints``,
    #: ``axis``, ``gesture``). Retargeting's joint solve is the costliest part of a tick
    #: before the controller: when ``joints`` is not listed the session skips it (commands
    #: then carry ``joints=None``). A rotation controller reads ``axis`` (never a setting).
    command_fields: ClassVar[frozenset[str]] = frozenset({"keypoints", "joints"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.command_fields) - {"keypoints", "joints", "axis", "gesture"}
        if unknown:
            raise TypeError(f"{cls.__name__}.command_fields: unknown Command fields {unknown}")

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self.hand: Hand = load_hand(config.hand)
        #: what the controller's learned models were trained on (their checkpoints'
        #: ``meta.physics``), set by controllers that load models (:meth:`_trained_on`);
        #: None: nothing learned
        self.trained_physics: dict | None = None
        #: the models were trained on other physics than the hand runs (:meth:`check_physics`)
        self.physics_notice: str = ""
        #: anything else the operator should know about the loaded models (e.g. two models
        #: trained for different partners), added by controllers as they load
        self.notes: list[str] = []

    @property
    def notice(self) -> str:
        """What the operator should know about this controller on this hand (other physics,
        :attr:`notes`); empty when nothing."""
        return "; ".join(n for n in (self.physics_notice, *self.notes) if n)

    def check_physics(self, running: dict | None) -> str:
        """Compare the physics the models were trained on with what the hand runs
        (``Robot.physics()``; None: unknown, e.g. real hardware) and keep the result in
        :attr:`physics_notice`: empty when they agree or either is unknown."""
        from assets.physics import note

        self.physics_notice = note(self.trained_physics, running)
        return self.physics_notice

    def _trained_on(self, physics: dict | None) -> None:
        """Keep what a loaded model was trained on. A checkpoint without a physics record
        predates the record (issue 18): it was trained on the Menagerie physics."""
        from assets.physics import BASELINE_PHYSICS

        self.trained_physics = physics or {"name": BASELINE_PHYSICS}

    @classmethod
    def setting_specs(cls) -> tuple[LiveSetting, ...]:
        """The live settings, from the Config fields declared with :func:`live`."""
        out = []
        for f in dataclasses.fields(cls.Config):
            meta = f.metadata.get("live")
            if meta is not None:
                out.append(dataclasses.replace(meta, name=f.name, label=meta.label or f.name))
        return tuple(out)

    @classmethod
    def live_settings(cls) -> tuple[str, ...]:
        """Names of the settings that may change between ticks without a reset."""
        return tuple(spec.name for spec in cls.setting_specs())

    @classmethod
    def availability(cls, hand: str) -> str | None:
        """None if the controller can run on ``hand``, else the reason it cannot."""
        return None

    def sim_start(self) -> np.ndarray | None:
        """A pose a simulated hand with an object starts a session in, the object placed
        where in-hand rotation starts (``Simulated.start_rotation``): a rotation policy's
        trained start. None (the default): the hand's own start."""
        return None

    def reset(self, state: HandState) -> None:  # noqa: B027 - optional hook
        """Start from ``state`` (called at session start and when switching controllers)."""

    @abc.abstractmethod
    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict[str, Any]]:
        """One control tick. Returns the joint target (n,) and info."""

    def settings(self) -> dict[str, Any]:
        """The current settings (recorded with every tick)."""
        return dataclasses.asdict(self.config)

    def update(self, **changes: Any) -> None:
        """Change live settings (all or none). Unknown or non-live names, and values of the
        wrong type or out of range, raise ValueError saying which."""
        specs = {spec.name: spec for spec in self.setting_specs()}
        bad = set(changes) - set(specs)
        if bad:
            raise ValueError(
                f"{type(self).__name__}: {sorted(bad)} cannot change live; "
                f"live settings: {list(specs)}"
            )
        checked = {k: specs[k].check(v) for k, v in changes.items()}
        self._apply_live(checked)
        self.config = dataclasses.replace(self.config, **checked)

    def _apply_live(self, changes: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Validate or act on checked live changes before they take effect (e.g. compile a
        cost function); raise ValueError to refuse them."""
