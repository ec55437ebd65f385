"""Parallel MuJoCo environments for RL (see ``training.envs.base``).

``TASKS`` maps a task name to its environment class and config; :func:`make_env` builds one
with config overrides: ``make_env("anygrasp", hand="leap", num_envs=256)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: The named physics randomization settings (``training.envs.base.Randomization.named``):
#: ``on`` (as trained), ``no-force`` (all but the random pushes on the object), ``off``.
RANDOMIZATION = ("on", "no-force", "off")

#: task name -> (module, env class, config class), imported on use (torch, mujoco).
TASKS: dict[str, tuple[str, str, str]] = {
    "anygrasp": ("training.envs.anygrasp", "AnygraspEnv", "AnygraspConfig"),
    "free_finger": ("training.envs.anygrasp", "FreeFingerEnv", "FreeFingerConfig"),
    "rotate": ("training.envs.rotate", "RotateEnv", "RotateConfig"),
}


def task_classes(task: str) -> tuple[type, type]:
    import importlib

    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    mod, env, cfg = TASKS[task]
    m = importlib.import_module(mod)
    return getattr(m, env), getattr(m, cfg)


def make_config(task: str, **overrides: Any) -> Any:
    """The task's config with ``overrides`` (unknown names raise, listing the known ones)."""
    _, cfg_cls = task_classes(task)
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"unknown {task} settings {bad}; known: {', '.join(sorted(names))}")
    return cfg_cls(**overrides)


def make_env(task: str, **overrides: Any) -> Any:
    env_cls, _ = task_classes(task)
    return env_cls(make_config(task, **overrides))
