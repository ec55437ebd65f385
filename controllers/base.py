"""The controller interface: turns the operator's Command into a joint target each tick."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import numpy as np

from assets.hands import Hand, load_hand
from assets.registry import Registry
from devices.retargeting.command import Command
from devices.robots.state import HandState

#: Every controller by name: ``CONTROLLERS.make("retarget", hand="leap")``.
CONTROLLERS: Registry[Controller] = Registry("controller")


class ControllerUnavailable(RuntimeError):
    """The controller cannot run (e.g. not trained yet); the message says why."""


@dataclasses.dataclass
class ControllerConfig:
    """Settings every controller has. Subclasses add their own fields.

    Attributes:
        hand: the hand the controller drives (``leap``, ``allegro``).
    """

    hand: str = "leap"


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
    #: Settings that may change between ticks without a reset.
    live_settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self.hand: Hand = load_hand(config.hand)

    @classmethod
    def availability(cls, hand: str) -> str | None:
        """None if the controller can run on ``hand``, else the reason it cannot."""
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
        """Change live settings; unknown or non-live names raise ValueError."""
        bad = set(changes) - set(self.live_settings)
        if bad:
            raise ValueError(
                f"{type(self).__name__}: {sorted(bad)} cannot change live; "
                f"live settings: {list(self.live_settings)}"
            )
        self.config = dataclasses.replace(self.config, **changes)
