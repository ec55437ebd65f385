"""``--robot NAME[:key=value,...]`` on the session commands, and ``dexteleop robots``."""

import json

import pytest
from conftest import dexteleop

from teleop_app.cli import main
from teleop_app.recording.recorder import Recorder
from teleop_app.recording.replay import counterfactual
from teleop_app.session import Session, SessionConfig

#: report fields measured on the wall clock (they differ between any two runs)
TIMING = ("rate_hz", "wall_time_s", "latency_ms", "missed_deadlines")


def test_robots_lists_each_backend_with_availability_and_doc():
    import devices.robots

    p = dexteleop("robots")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for name in devices.robots.ROBOTS.names():
        cls = devices.robots.ROBOTS.get(name)
        row = next(line for line in lines if line.split()[0] == name)
        assert row.split()[1] in ("available", "unavailable:")
        doc = cls.__doc__.strip().splitlines()[0]
        assert lines[lines.index(row) + 1].strip() == doc
    assert any(line.startswith("sim") and "available" in line for line in lines)


def test_robot_sim_runs_as_the_default(tmp_path):
    common = ["run", "--hand", "leap", "--device", "replay", "--controller", "retarget"]
    common += ["--fast", "--duration", "2", "--report"]
    reports = []
    for extra in ([], ["--robot", "sim"]):
        out = tmp_path / f"r{len(reports)}.json"
        assert main([*common, str(out), *extra]) == 0
        reports.append({k: v for k, v in json.loads(out.read_text()).items() if k not in TIMING})
    assert reports[0]["ticks"] == 40 and reports[0]["config"]["robot"] == "sim"
    assert reports[0] == reports[1]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("no_such_robot", "no_such_robot"),
        ("sim:bogus=1", "bogus"),
        ("sim:object_mass_kg=heavy", "object_mass_kg"),
        ("sim:wrist=sideways", "sideways"),
        ("sim:object", "key=value"),
    ],
)
@pytest.mark.parametrize("command", ["run", "record", "replay"])
def test_a_bad_robot_is_one_line_and_exit_2(tmp_path, capsys, spec, needle, command):
    args = {
        "run": ["run", "--fast", "--duration", "1"],
        "record": ["record", "--out", str(tmp_path / "ds"), "--fast", "--duration", "1"],
        "replay": ["replay", str(_recording(tmp_path))],
    }[command]
    assert main([*args, "--robot", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err, err
    assert not (tmp_path / "ds").exists()


def test_the_app_refuses_a_bad_robot_before_opening(capsys):
    assert main(["app", "--robot", "no_such_robot", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_robot" in err and "\n" not in err


def _recording(tmp_path):
    """A one-episode recording on the simulated hand with a cube (made once per test)."""
    root = tmp_path / "rec"
    if not root.exists():
        config = SessionConfig(fast=True, robot_options={"object": "cube", "wrist": "palm_down"})
        session = Session(config)
        rec = Recorder.for_session(root, session)
        session.subscribe(rec)
        with session:
            rec.start("t").result(timeout=10)
            session.run(ticks=10)
            rec.stop().result(timeout=30)
        rec.close()
    return root


def test_replay_runs_on_the_recorded_backend_or_the_one_asked(tmp_path, capsys):
    root = _recording(tmp_path)
    report, ran = counterfactual(root, 0)
    assert report["replayed"]["robot"] == ran["robot"] == "sim"
    assert ran["robot_options"] == {"object": "cube", "wrist": "palm_down"}
    same, _ = counterfactual(root, 0, robot="sim")
    assert same["target_difference_rad"] == report["target_difference_rad"]
    _, ran = counterfactual(root, 0, robot="sim:wrist=palm_up")
    assert ran["robot_options"] == {"object": "cube", "wrist": "palm_up"}  # the spec wins
    out = tmp_path / "replay.json"
    assert main(["replay", str(root), "--robot", "sim", "--report", str(out)]) == 0
    assert json.loads(out.read_text())["replayed"]["robot"] == "sim"
    assert main(["replay", str(root), "--robot", "sim:wrist=sideways"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sideways" in err and "\n" not in err


def test_robot_spec_cannot_change_the_hand_or_rate_or_contradict_the_scene():
    from teleop_app.configs import session_config
    from teleop_app.session import Session, SessionConfig

    base = dict(hand="leap", device="replay", controller="retarget")
    with pytest.raises(ValueError, match="the hand is the session's"):
        session_config(**base, robot="sim:hand=allegro")
    with pytest.raises(ValueError, match="control rate is the session's"):
        session_config(**base, robot="sim:rate_hz=10")
    with pytest.raises(ValueError, match="give it once"):
        session_config(**base, robot="sim:object=cube", obj="sphere")
    same = session_config(**base, robot="sim:object=cube", obj="cube")
    assert same.robot_options["object"] == "cube"
    assert "object" not in session_config(**base, robot="sim:object=none").robot_options
    follow = session_config(**base, robot="sim:wrist=follow")  # the default wrist asks nothing
    assert follow.robot_options["wrist"] == "follow"
    with pytest.raises(ValueError, match="for leap but the robot options ask for allegro"):
        Session(SessionConfig(hand="leap", robot_options={"hand": "allegro"}, fast=True))
