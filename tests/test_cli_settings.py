"""One check for every controller setting, however it arrives: a bad value on the command
line (``--set``) is refused before anything starts, with one line naming the setting; the
same check runs on live changes (the UI), saved app settings and replayed recordings (they
all build the controller's config). Iterates the registry: a new controller or setting is
covered without touching this file."""

import dataclasses
import logging
import math
import typing

import pytest

import controllers
from controllers import CONTROLLERS
from controllers.base import LiveSetting
from teleop_app import cli
from teleop_app.logonce import RepeatedLog

NAMES = CONTROLLERS.names()


class Started(Exception):
    """Raised by the stand-in session: the command got past every check."""


@pytest.fixture
def no_session(monkeypatch):
    """``dexteleop run`` up to building the session, and no further (no model loads)."""
    import teleop_app.session

    built = []

    def fake_session(config, **kw):
        built.append(config)
        raise Started

    monkeypatch.setattr(teleop_app.session, "Session", fake_session)
    return built


def run(controller, *pairs):
    argv = ["run", "--fast", "--duration", "1", "--controller", controller]
    for pair in pairs:
        argv += ["--set", pair]
    return cli.main(argv)


def _bad_values(spec: LiveSetting) -> dict[str, str]:
    """Values (as typed on the command line) the setting must refuse, by why."""
    bad = {"nan": "nan", "wrong type": "[1, 2]", "unknown": "banana"}
    if spec.kind in ("float", "int"):
        if spec.high is not None:
            bad["above range"] = str(spec.high + 1)
        if spec.low is not None:
            bad["below range"] = str(spec.low - 1)
        if spec.kind == "int":
            bad["not whole"] = str((spec.low or 0) + 0.5)
    elif spec.kind == "bool":
        bad["number"] = "2"
    elif spec.kind in ("choice", "axis"):
        bad["wrong type"] = "5"
    elif spec.kind == "text":
        bad.pop("unknown")  # any text is text
        bad["number"] = "5"
    return bad


def _good_value(spec: LiveSetting) -> str:
    if spec.kind in ("float", "int"):
        v = spec.high if spec.high is not None else 1
        return str(int(v) if spec.kind == "int" else float(v))
    if spec.kind == "bool":
        return "true"
    if spec.kind in ("choice", "axis"):
        return spec.choices[-1]
    return "any text"


LIVE = [
    pytest.param(name, spec, id=f"{name}.{spec.name}")
    for name in NAMES
    for spec in CONTROLLERS.get(name).setting_specs()
]


@pytest.mark.parametrize(("controller", "spec"), LIVE)
def test_a_bad_live_setting_is_refused_before_the_session(controller, spec, no_session, capsys):
    for why, value in _bad_values(spec).items():
        assert run(controller, f"{spec.name}={value}") == 2, (why, value)
        err = capsys.readouterr().err.strip()
        assert spec.name in err and controller in err and "\n" not in err, (why, err)
        assert "Traceback" not in err
        if why.endswith("range"):
            assert f"[{spec.low}, {spec.high}]" in err, err  # the allowed range
        if spec.kind in ("choice", "axis") and why == "unknown":
            assert all(c in err for c in spec.choices), err  # the allowed values
    assert no_session == []  # nothing was built
    with pytest.raises(Started):
        run(controller, f"{spec.name}={_good_value(spec)}")
    value = no_session[-1].controller_options[spec.name]
    assert spec.check(value) == value


def _non_live_fields():
    for name in NAMES:
        cfg = CONTROLLERS.get(name).Config
        hints = typing.get_type_hints(cfg)
        live = {s.name for s in CONTROLLERS.get(name).setting_specs()}
        for f in dataclasses.fields(cfg):
            if f.name not in live and f.name != "hand":
                yield pytest.param(name, f.name, hints[f.name], id=f"{name}.{f.name}")


@pytest.mark.parametrize(("controller", "setting", "annotation"), list(_non_live_fields()))
def test_other_settings_are_checked_against_their_type(controller, setting, annotation):
    """Settings the operator cannot change live are checked against their annotation."""
    allowed = set(typing.get_args(annotation)) or {annotation}
    bad = {bool: [1.5, "x"], int: ["x", 1.5, math.nan], float: ["x", math.nan, math.inf]}
    bad[str] = [5, 1.5, True]
    for t in allowed & set(bad):
        for value in bad[t]:
            if any(isinstance(value, a) and a is not type(None) for a in allowed - {bool}):
                continue  # allowed by another member of a union
            with pytest.raises(ValueError, match=rf"{controller} setting {setting} must be"):
                CONTROLLERS.config(controller, **{setting: value})
    if type(None) not in allowed:
        with pytest.raises(ValueError, match=setting):
            CONTROLLERS.config(controller, **{setting: None})
    # the default passes, and an int where a float goes becomes a float
    default = CONTROLLERS.config(controller)
    assert getattr(default, setting) == getattr(CONTROLLERS.get(controller).Config(), setting)
    if float in allowed:
        assert isinstance(getattr(CONTROLLERS.config(controller, **{setting: 1}), setting), float)


@pytest.mark.parametrize("controller", NAMES)
def test_unknown_setting_names_are_refused(controller, no_session, capsys):
    assert run(controller, "no_such_setting=1") == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_setting" in err and "\n" not in err
    assert no_session == []


def test_the_examples_from_the_issue(no_session, capsys):
    for controller, pair, needle in [
        ("dexgen", "guidance=5", "[0.0, 1.0]"),
        ("dexgen", "guidance=nan", "finite"),
        ("retarget", "smoothing=2", "[0.0, 0.95]"),
        ("modex", "goal=banana", "banana"),
    ]:
        assert run(controller, pair) == 2
        err = capsys.readouterr().err.strip()
        assert pair.split("=")[0] in err and needle in err and "\n" not in err, err


def test_the_same_check_for_live_changes_and_built_configs():
    """A live change (the UI) is refused by the same rule: out of range, wrong type."""
    ctl = controllers.retarget.RetargetController(CONTROLLERS.config("retarget"))
    for value in (2.0, math.nan, "x"):
        with pytest.raises(ValueError, match="smoothing"):
            ctl.update(smoothing=value)
    ctl.update(smoothing=0.5)
    assert ctl.config.smoothing == 0.5
    with pytest.raises(ValueError, match=r"retarget setting smoothing must be in \[0.0, 0.95\]"):
        dataclasses.replace(ctl.config, smoothing=1.0)


def test_a_bad_setting_through_the_cli_in_a_subprocess():
    import subprocess
    import sys

    from conftest import REPO

    p = subprocess.run(
        [sys.executable, "-m", "teleop_app", "run", "--fast", "--duration", "1",
         "--controller", "retarget", "--set", "smoothing=2"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr.strip() == (
        "dexteleop: error: retarget setting smoothing must be in [0.0, 0.95], got 2.0"
    )
    assert p.stdout == ""


def test_a_valid_setting_runs(tmp_path):
    import json

    out = tmp_path / "r.json"
    argv = ["run", "--fast", "--duration", "1", "--set", "smoothing=0.5", "--report", str(out)]
    assert cli.main(argv) == 0
    rep = json.loads(out.read_text())
    assert rep["ticks"] == 20 and rep["config"]["controller_options"] == {"smoothing": 0.5}


# -- a failure on every tick is logged once, with a count -----------------------------------
def test_repeated_log_logs_once_then_counts(caplog):
    now = [0.0]
    rl = RepeatedLog(logging.getLogger("t"), every_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        for i in range(100):
            now[0] = i * 0.05  # 20 Hz for 5 s
            rl.warning("controller %s failed: %s", "x", f"boom {i}")
        assert [r.getMessage() for r in caplog.records] == ["controller x failed: boom 0"]
        now[0] = 12.0
        rl.warning("controller %s failed: %s", "x", "boom 100")  # 10 s on: a line, a count
        rl.warning("retargeting failed: %s", "other")  # another template: its own first line
        rl.flush()
        rl.flush()  # nothing new: nothing said
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [
        "controller x failed: boom 0",
        "controller x failed: boom 100 (100 more times; 101 in all)",
        "retargeting failed: other",
    ]
    assert rl.counts() == {"controller %s failed: %s": 101, "retargeting failed: %s": 1}


def test_a_controller_failing_every_tick_is_logged_once_with_a_count(caplog):
    from controllers.retarget import RetargetController
    from teleop_app.session import Session, SessionConfig

    @CONTROLLERS.register("fails_every_tick_test")
    class Failing(RetargetController):
        def step(self, state, command):
            raise FloatingPointError("the model returned NaN")

    try:
        session = Session(SessionConfig(fast=True, controller="fails_every_tick_test"))
        with caplog.at_level(logging.WARNING, logger="teleop_app.session"), session:
            n = session.run(ticks=40)
    finally:
        CONTROLLERS._classes.pop("fails_every_tick_test", None)
    lines = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0] == "controller fails_every_tick_test failed: the model returned NaN"
    failures = session.report()["safety_events"]["controller_error"]
    assert failures >= n - 5  # it failed on (almost) every tick: a hold each
    assert lines[1].endswith(f"({failures - 1} more times; {failures} in all)")


@pytest.mark.parametrize(
    ("controller", "setting", "value"),
    [
        ("dexgen", "sample_every", 0),
        ("dexgen", "max_offset_m", 0.0),
        ("dexgen", "precision", "fp8"),
        ("modex", "setting", "banana"),
        ("modex", "horizon", 0),
    ],
)
def test_constraints_beyond_types_are_refused_with_the_config(controller, setting, value):
    """Values of the right type that the controller cannot use are refused when its config
    is built, before any model loads (the constructor is never reached)."""
    with pytest.raises(ValueError, match=f"{controller} setting {setting}"):
        CONTROLLERS.config(controller, **{setting: value})
