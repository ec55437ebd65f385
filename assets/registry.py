"""A small registry of plugins: an abstract base class plus a config dataclass per name.

It lives in ``assets`` because that is the lowest layer: devices, robots and controllers all
register through it, and a generic :meth:`Registry.make` builds any of them from a config, so
the CLI, the UI and the tests can list and parametrize over what exists without if/elif chains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownPluginError(KeyError):
    """Raised when a name is not registered; the message lists what is."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to plugin classes. Each class has a ``Config`` dataclass attribute.

    Example::

        DEVICES = Registry[Device]("device")

        @DEVICES.register("replay")
        class ReplayDevice(Device):
            Config = ReplayConfig
            def __init__(self, config: ReplayConfig): ...

        dev = DEVICES.make("replay", path="clip.npz")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator registering ``cls`` under ``name``."""

        def deco(cls: type[T]) -> type[T]:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            config_cls = getattr(cls, "Config", None)
            if config_cls is None or not dataclasses.is_dataclass(config_cls):
                raise TypeError(f"{cls.__name__} needs a dataclass attribute 'Config'")
            self._classes[name] = cls
            cls.registered_name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plugin registered for a test or unloaded); unknown: no-op."""
        self._classes.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownPluginError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or 'none'}"
            ) from None

    def config(self, name: str, **overrides: Any) -> Any:
        """The config dataclass of ``name`` with ``overrides`` applied (unknown keys raise)."""
        config_cls = self.get(name).Config  # type: ignore[attr-defined]
        fields = {f.name for f in dataclasses.fields(config_cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise ValueError(
                f"{self.kind} {name!r} has no setting {sorted(unknown)}; settings: {sorted(fields)}"
            )
        return config_cls(**overrides)

    def make(self, name: str, config: Any = None, **overrides: Any) -> T:
        """Build the plugin ``name`` from ``config`` (or its default config with overrides)."""
        cls = self.get(name)
        if config is None:
            config = self.config(name, **overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        return cls(config)  # type: ignore[call-arg]
