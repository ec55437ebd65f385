"""Recording: the LeRobot v3.0 layout, crash safety (SIGKILL), recovery, round trips."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from teleop_app.recording.dataset import DatasetError
from teleop_app.recording.reader import RecordedDataset, export_hdf5
from teleop_app.recording.recorder import Recorder, pending_logs, recover
from teleop_app.recording.replay import counterfactual
from teleop_app.recording.wal import read_wal
from teleop_app.session import Session, SessionConfig

DEXTELEOP = [sys.executable, "-m", "teleop_app"]


def record(root, *, episodes=2, ticks=40, tasks=("pinch", "grasp"), obj="cube", **session_kw):
    config = SessionConfig(fast=True, robot_options={"object": obj} if obj else {}, **session_kw)
    session = Session(config)
    rec = Recorder.for_session(root, session)
    session.subscribe(rec)
    records = []
    session.subscribe(records.append)
    with session:
        for e in range(episodes):
            rec.start(tasks[e % len(tasks)]).result(timeout=10)
            session.run(ticks=ticks)
            assert rec.stop().result(timeout=30) == e
    rec.close()
    return records


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "demos"
    records = record(root, episodes=3, ticks=40)
    return root, records


# -- the layout (checked against lerobot 0.4.4's reader and writer; see the README) -------------
def test_info_json_follows_lerobot_v3(dataset):
    root, _ = dataset
    info = json.loads((root / "meta" / "info.json").read_text())
    assert set(info) == {
        "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks",
        "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits",
        "data_path", "video_path", "features",
    }  # fmt: skip
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and isinstance(info["fps"], int)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 120, 2)
    assert info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    feats = info["features"]
    assert list(feats)[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert feats["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    for k in ("frame_index", "episode_index", "index", "task_index"):
        assert feats[k] == {"dtype": "int64", "shape": [1], "names": None}
    assert feats["observation.state"]["dtype"] == "float32"
    assert feats["observation.state"]["shape"] == [16]
    assert len(feats["observation.state"]["names"]) == 16
    assert feats["action"]["shape"] == [16]
    for name, f in feats.items():
        assert "/" not in name
        assert f["dtype"] in ("float32", "float64", "int64", "bool", "string")
        assert isinstance(f["shape"], list) and len(f["shape"]) == 1
        assert f["names"] is None or len(f["names"]) == f["shape"][0]


def test_data_parquet_columns_and_rows_follow_lerobot_v3(dataset):
    root, records = dataset
    info = json.loads((root / "meta" / "info.json").read_text())
    files = sorted((root / "data").glob("*/*.parquet"))
    assert [f.relative_to(root).as_posix() for f in files] == [
        f"data/chunk-000/file-{i:03d}.parquet" for i in range(3)
    ]
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.column_names == list(info["features"])  # no column more or less
    for name, f in info["features"].items():
        t = table.schema.field(name).type
        if f["shape"] == [1]:  # (1,) is a scalar column, never a one-element list
            assert not pa.types.is_list(t) and not pa.types.is_fixed_size_list(t), name
            want = "string" if f["dtype"] == "string" else f["dtype"]
            assert str(t) in (want, {"float32": "float", "float64": "double"}.get(want)), name
        else:  # (N,) is fixed_size_list<N>
            assert pa.types.is_fixed_size_list(t) and t.list_size == f["shape"][0], name
    n = table.num_rows
    np.testing.assert_array_equal(table.column("index").to_numpy(), np.arange(n))
    ep = table.column("episode_index").to_numpy()
    frame = table.column("frame_index").to_numpy()
    np.testing.assert_array_equal(ep, np.repeat([0, 1, 2], 40))
    np.testing.assert_array_equal(frame, np.tile(np.arange(40), 3))
    np.testing.assert_allclose(table.column("timestamp").to_numpy(), frame / 20.0, atol=1e-6)
    np.testing.assert_array_equal(table.column("task_index").to_numpy(), np.repeat([0, 1, 0], 40))
    # the recorded values are the ticks' (action = what the hand received)
    sent = np.stack(table.column("action").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(sent, np.array([r.sent for r in records]), atol=1e-6)


def test_tasks_and_episode_metadata_follow_lerobot_v3(dataset):
    root, _ = dataset
    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    assert b"pandas" in tasks.schema.metadata  # the task strings are the pandas index
    df = tasks.to_pandas()
    assert list(df.index) == ["pinch", "grasp"] and list(df["task_index"]) == [0, 1]
    eps = pa.concat_tables(
        [pq.read_table(p) for p in sorted((root / "meta" / "episodes").glob("*/*.parquet"))]
    )
    cols = eps.column_names
    for c in (
        "episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
        "dataset_from_index", "dataset_to_index", "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    ):  # fmt: skip
        assert c in cols, c
    assert eps.column("episode_index").to_pylist() == [0, 1, 2]
    assert eps.column("length").to_pylist() == [40, 40, 40]
    assert eps.column("dataset_from_index").to_pylist() == [0, 40, 80]
    assert eps.column("dataset_to_index").to_pylist() == [40, 80, 120]
    assert eps.column("tasks").to_pylist() == [["pinch"], ["grasp"], ["pinch"]]
    assert eps.column("data/file_index").to_pylist() == [0, 1, 2]
    stat = eps.column("stats/observation.state/mean").to_pylist()[0]
    assert len(stat) == 16
    assert eps.column("stats/index/count").to_pylist()[0] == [40]
    assert not any(c.startswith("stats/controller.name") for c in cols)  # strings: no stats


def test_stats_json_follows_lerobot_v3(dataset):
    root, records = dataset
    stats = json.loads((root / "meta" / "stats.json").read_text())
    keys = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert set(stats["observation.state"]) == keys
    assert "controller.name" not in stats and "timestamp" in stats
    q = np.array([r.state.q for r in records])
    np.testing.assert_allclose(stats["observation.state"]["mean"], q.mean(0), atol=1e-5)
    np.testing.assert_allclose(stats["observation.state"]["std"], q.std(0), atol=1e-5)
    np.testing.assert_allclose(stats["observation.state"]["min"], q.min(0), atol=1e-6)
    assert stats["observation.state"]["count"] == [120]
    assert stats["index"]["max"] == [119.0]
    for feat in stats.values():
        for v in feat.values():
            assert np.all(np.isfinite(v))


def test_reader_loads_episodes_and_validates(dataset):
    root, records = dataset
    ds = RecordedDataset(root)
    assert ds.validate() == []
    assert (ds.num_episodes, ds.num_frames, ds.fps) == (3, 120, 20)
    ep = ds.episode(1)
    assert ep["task"] == "grasp" and ep["observation.state"].shape == (40, 16)
    np.testing.assert_allclose(
        ep["observation.state"], [r.state.q for r in records[40:80]], atol=1e-6
    )
    assert ep["controller.name"] == ["retarget"] * 40
    assert json.loads(ep["controller.settings"][0]) == {"hand": "leap", "smoothing": 0.0}
    assert ep["observation.object_pose"].shape == (40, 7)
    t = ds.episode_torch(0)
    assert str(t["action"].dtype) == "torch.float32" and tuple(t["action"].shape) == (40, 16)
    with pytest.raises(DatasetError, match="no episode 3"):
        ds.episode(3)
    summary = ds.summary()
    assert summary["episodes"] == 3 and summary["tasks"] == ["pinch", "grasp"]


def test_validate_finds_damage(tmp_path):
    root = tmp_path / "d"
    record(root, episodes=2, ticks=10)
    path = root / "data" / "chunk-000" / "file-001.parquet"
    t = pq.read_table(path)
    pq.write_table(t.drop_columns(["observation.velocity"]), path)
    problems = RecordedDataset(root).validate()
    assert any("episode 1: columns differ" in p for p in problems)


def test_hdf5_export_has_the_robomimic_layout(dataset, tmp_path):
    import h5py

    root, records = dataset
    out = export_hdf5(RecordedDataset(root), tmp_path / "demos.hdf5")
    with h5py.File(out) as f:
        data = f["data"]
        assert data.attrs["total"] == 120 and json.loads(data.attrs["env_args"])["env_kwargs"]
        assert sorted(data) == ["demo_0", "demo_1", "demo_2"]
        d = data["demo_1"]
        assert d.attrs["num_samples"] == 40 and d["actions"].shape == (40, 16)
        assert d["dones"][-1] == 1 and d["rewards"].shape == (40,)
        np.testing.assert_allclose(d["actions"][:], [r.sent for r in records[40:80]], atol=1e-6)
        assert d["obs/observation_state"].shape == (40, 16)
        assert "obs/controller_name" not in d  # text columns are not observations


# -- recording next to a running loop ----------------------------------------------------------
def test_a_full_disk_stops_recording_not_teleoperation(tmp_path, disk_full_after):
    disarm = disk_full_after(10)  # the disk fills up after 10 frames
    root = tmp_path / "full"
    session = Session(SessionConfig(fast=True))
    rec = Recorder.for_session(root, session, sync_s=0.01)
    session.subscribe(rec)
    with session:
        rec.start("x").result(timeout=10)
        assert session.run(ticks=40) == 40  # the loop is untouched
        deadline = time.monotonic() + 5
        while rec.state != "failed":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert "the disk is full" in rec.message and "teleoperation goes on" in rec.message
        with pytest.raises(RuntimeError, match="the disk is full"):
            rec.stop().result(timeout=10)
        assert session.run(ticks=10) == 10
    rec.close()
    disarm()
    # the frames that reached the log are not lost: the next recorder recovers them
    again = Recorder.for_session(root, Session(SessionConfig(fast=True)))
    again.close()
    ds = RecordedDataset(root)
    assert ds.num_episodes == 1 and ds.episodes[0]["length"] == 10 and ds.validate() == []


def test_a_device_file_as_log_is_refused_at_start(tmp_path):
    root = tmp_path / "dev"
    session = Session(SessionConfig(fast=True))
    rec = Recorder.for_session(root, session)
    session.subscribe(rec)
    (root / ".recording" / "episode_000000.wal").symlink_to("/dev/full")
    with session:
        episode = rec.start("x").result(timeout=10)  # set aside, the episode starts
        assert episode == 0 and rec.state == "recording"
        session.run(ticks=5)
        assert rec.stop().result(timeout=10) == 0
    rec.close()
    assert (root / ".recording" / "episode_000000.wal.bad").is_symlink()


def test_an_unwritable_folder_is_a_clear_error(tmp_path):
    session = Session(SessionConfig(fast=True))
    with pytest.raises(OSError):
        Recorder("/proc/dexteleop-test", hand=session.robot.hand, fps=20, with_object=False)


def test_one_recorder_per_dataset_and_features_must_match(tmp_path):
    root = tmp_path / "d"
    record(root, episodes=1, ticks=5)
    session = Session(SessionConfig(fast=True))
    with pytest.raises(DatasetError, match="other features"):
        Recorder.for_session(root, session)  # recorded with a cube, this one has none
    same = Session(SessionConfig(fast=True, robot_options={"object": "cube"}))
    a = Recorder.for_session(root, same)
    try:
        with pytest.raises(DatasetError, match="another process"):
            Recorder.for_session(root, same)
    finally:
        a.close()
    faster = Session(SessionConfig(fast=True, rate_hz=25.0, robot_options={"object": "cube"}))
    with pytest.raises(DatasetError, match="at 20 fps"):
        Recorder.for_session(root, faster)


def test_discard_and_a_torn_log_tail(tmp_path):
    root = tmp_path / "d"
    session = Session(SessionConfig(fast=True))
    rec = Recorder(root, hand=session.robot.hand, fps=20, with_object=False, sync_s=0.01)
    session.subscribe(rec)
    with session:
        rec.start("a").result(timeout=10)
        session.run(ticks=10)
        rec.discard().result(timeout=10)
        assert pending_logs(root) == []
        rec.start("b").result(timeout=10)
        session.run(ticks=30)
        time.sleep(0.2)
    # simulate a crash: the thread never commits; tear the last record in half
    rec._q.put(("quit", None))
    rec._thread.join()
    rec._wal.sync()
    (log,) = pending_logs(root)
    size = log.stat().st_size
    with open(log, "r+b") as f:
        f.truncate(size - 100)
    _header, rows, clean = read_wal(log)
    assert len(rows) == 29 and not clean
    rec._lock_file.close()
    assert recover(root) == [
        f"{log.name}: recovered as episode 0, 29 frames (a torn last record was dropped)"
    ]
    ds = RecordedDataset(root)
    assert ds.num_episodes == 1 and ds.episodes[0]["length"] == 29 and ds.validate() == []
    assert ds.tasks == ["b"]


# -- round trip and counterfactual replay --------------------------------------------------------
def test_replaying_the_recorded_stream_reproduces_the_run(dataset):
    root, _ = dataset
    report, _ = counterfactual(root, 1)
    assert report["replayed"]["controller"] == "retarget"
    assert report["target_difference_rad"]["max"] == 0.0  # identical targets, tick for tick
    assert report["recorded"]["tracking_error_mm"] == report["replayed"]["tracking_error_mm"]
    other, _ = counterfactual(root, 1, settings={"smoothing": 0.8})
    assert other["replayed"]["settings"]["smoothing"] == 0.8
    assert other["target_difference_rad"]["max"] > 0.05
    assert other["replayed"]["tracking_error_mm"] > report["replayed"]["tracking_error_mm"]
    assert other["limit_violations"] == 0


def test_a_keypoint_only_recording_replays_through_either_controller(tmp_path):
    """MoDex reads keypoints only, so its recorded commands have no joint targets (NaN):
    replayed through MoDex they reproduce the run; a controller that needs joints gets the
    human frames retargeted again instead of holding still."""
    root = tmp_path / "modex"
    options = {"time_budget_ms": 0.0}  # every CEM iteration: the same plan on replay
    record(root, episodes=1, ticks=30, controller="modex", controller_options=options)
    ds = RecordedDataset(root)
    ep = ds.episode(0)
    assert np.isnan(np.asarray(ep["command.joints"])).all()
    same, _ = counterfactual(root, 0)
    assert same["replayed"]["controller"] == "modex"
    assert same["replayed_from"] == "recorded commands"
    assert same["target_difference_rad"]["max"] < 1e-5
    other, _ = counterfactual(root, 0, controller="retarget")
    assert other["replayed_from"].startswith("human frames, retargeted again")
    assert other["limit_violations"] == 0
    # it followed the operator about as well as MoDex did (holding still: ~5x the error)
    ratio = other["replayed"]["tracking_error_mm"] / same["replayed"]["tracking_error_mm"]
    assert ratio < 2.0, (other["replayed"], same["replayed"])
    assert same["replayed"]["settings"]["offset_gain"] == 0.3  # as recorded


def test_a_recording_made_before_a_setting_existed_replays_as_it_ran(tmp_path, monkeypatch):
    """MoDex recordings from before the offset correction have no offset_gain: replayed
    through MoDex they get it off (how they ran), not the new default."""
    import json as json_

    root = tmp_path / "old_modex"
    record(root, episodes=1, ticks=5, controller="modex", controller_options={})
    episode = RecordedDataset.episode

    def without_offset(self, index):
        ep = episode(self, index)
        old = [json_.loads(x) for x in ep["controller.settings"]]
        for settings in old:
            settings.pop("offset_gain")
        ep["controller.settings"] = [json_.dumps(x) for x in old]
        return ep

    monkeypatch.setattr(RecordedDataset, "episode", without_offset)
    report, _ = counterfactual(root, 0)
    assert report["replayed"]["settings"]["offset_gain"] == 0.0


def test_an_episode_that_switched_to_a_keypoint_only_controller_is_retargeted_again(tmp_path):
    """Half retarget, half MoDex: replayed through retarget, the ticks without joint targets
    would hold the hand, so the frames are retargeted again for the whole episode."""
    root = tmp_path / "mixed"
    session = Session(SessionConfig(fast=True, robot_options={"object": "cube"}))
    rec = Recorder.for_session(root, session)
    session.subscribe(rec)
    with session:
        rec.start("mixed").result(timeout=10)
        session.run(ticks=15)
        session.set_controller("modex", build_now=True, time_budget_ms=0.0)
        session.run(ticks=15)
        assert rec.stop().result(timeout=30) == 0
    rec.close()
    joints = np.asarray(RecordedDataset(root).episode(0)["command.joints"])
    has = np.isfinite(joints).all(axis=1)
    assert has[:10].all() and not has[-10:].any()  # both kinds of command in one episode
    report, _ = counterfactual(root, 0, controller="retarget")
    assert report["replayed_from"].startswith("human frames, retargeted again")
    assert report["replayed"]["ticks"] == 30 and report["limit_violations"] == 0


# -- crash safety: SIGKILL at random moments ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_mid_episode_loses_at_most_a_second(tmp_path, seed):
    rng = random.Random(seed)
    root = tmp_path / "demos"
    cmd = [*DEXTELEOP, "record", "--out", str(root), "--episodes", "4", "--duration", "2"]
    cmd += ["--object", "cube", "--progress", "--task", f"seed {seed}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        line = proc.stdout.readline()  # wait until recording starts (models load first)
        assert line.startswith("recording episode 0"), line + proc.stderr.read()
        lines.append(line)
        t_start = float(line.split()[-1])
        time.sleep(rng.uniform(0.3, 7.5))
        proc.send_signal(signal.SIGKILL)
        t_kill = time.time()
        out, _ = proc.communicate(timeout=30)
        lines += out.splitlines()
    finally:
        proc.kill()
    started = [ln for ln in lines if ln.startswith("recording episode")]
    last_ep = int(started[-1].split()[2])
    t_last = float(started[-1].split()[-1])
    synced = [int(ln.split()[4]) for ln in lines if ln.startswith(f"synced episode {last_ep} ")]
    # restart: opening the dataset (as the next recording or the doctor does) recovers it
    out = subprocess.run(
        [*DEXTELEOP, "dataset", "doctor", str(root)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    ds = RecordedDataset(root)
    assert ds.validate() == []
    assert pending_logs(root) == []
    lengths = [e["length"] for e in ds.episodes]
    assert all(n == 40 for n in lengths[:last_ep])  # every finished episode intact
    if len(lengths) > last_ep:  # the interrupted one, recovered
        recovered = lengths[last_ep]
        elapsed = min(t_kill - t_last, 2.0)
        assert recovered >= (synced[-1] if synced else 0)  # everything synced survived
        assert recovered >= 20 * elapsed - 20 - 4, (recovered, elapsed)  # at most ~1 s lost
    else:  # killed before its first sync
        assert t_kill - t_last < 1.0 + 0.2 and not synced
    assert t_start > 0
    print(f"seed {seed}: killed {t_kill - t_start:.2f} s in, episode {last_ep}, lengths {lengths}")


def test_a_log_that_is_not_a_file_is_set_aside_not_read(tmp_path):
    root = tmp_path / "d"
    (root / ".recording").mkdir(parents=True)
    bogus = root / ".recording" / "episode_000000.wal"
    bogus.symlink_to("/dev/zero")  # reading it whole would never end
    (line,) = recover(root)
    assert "not a regular file" in line and "set aside" in line
    assert pending_logs(root) == []
    garbage = root / ".recording" / "episode_000001.wal"
    garbage.write_bytes(b"not a log at all")
    (line,) = recover(root)
    assert "not a recording log" in line


def test_lerobot_itself_loads_a_recording(dataset):
    """Set DEXTELEOP_LEROBOT_PYTHON to a python with lerobot 0.4.x (a separate venv: it
    cannot be installed beside our torch) to run this check; skipped otherwise."""
    python = os.environ.get("DEXTELEOP_LEROBOT_PYTHON")
    if not python:
        pytest.skip("DEXTELEOP_LEROBOT_PYTHON is not set (a python with lerobot 0.4.x)")
    root, _ = dataset
    script = Path(__file__).with_name("lerobot_load_check.py")
    out = subprocess.run(
        [python, str(script), str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root.parent,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["frames"] == 120 and result["episodes"] == 3 and result["fps"] == 20
    assert result["task"] == "pinch" and result["state_shape"] == [16]
    assert result["subset_frames"] == 40 and result["action_is_pad"] == [False, True]
    assert result["has_stats"]


def _recorder(root, **kw):
    session = Session(SessionConfig(fast=True))
    rec = Recorder.for_session(root, session, **kw)
    session.subscribe(rec)
    session.start()
    return session, rec


def test_a_save_that_fails_after_the_commit_point_is_neither_lost_nor_doubled(
    tmp_path, monkeypatch
):
    from teleop_app.recording import dataset as dsmod

    root = tmp_path / "d"
    session, rec = _recorder(root)
    try:
        for _ in range(2):
            rec.start("t").result(timeout=10)
            session.run(ticks=10)
            if rec.episodes == 1:  # the second save: stats.json cannot be written
                monkeypatch.setattr(dsmod, "rebuild_stats", _raise_oserror)
                with pytest.raises(RuntimeError, match="stays in its log"):
                    rec.stop().result(timeout=10)
                monkeypatch.undo()
            else:
                rec.stop().result(timeout=10)
        assert rec.start("t").result(timeout=10) == 2  # episode 1 was saved: not redone
        session.run(ticks=10)
        assert rec.stop().result(timeout=10) == 2
    finally:
        rec.close()
        session.close()
    ds = RecordedDataset(root)
    assert [e["length"] for e in ds.episodes] == [10, 10, 10] and ds.validate() == []
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert stats["index"]["count"] == [30]


def _raise_oserror(*a, **k):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_save_interrupted_before_the_commit_point_leaves_nothing_lerobot_would_read(
    tmp_path, monkeypatch
):
    from teleop_app.recording import dataset as dsmod

    root = tmp_path / "d"
    session, rec = _recorder(root)
    try:
        rec.start("t").result(timeout=10)
        session.run(ticks=10)
        rec.stop().result(timeout=10)
        rec.start("u").result(timeout=10)
        session.run(ticks=10)
        monkeypatch.setattr(dsmod, "write_tasks", _raise_oserror)  # data files are written
        with pytest.raises(RuntimeError):
            rec.stop().result(timeout=10)
        monkeypatch.undo()
    finally:
        rec.close()
        session.close()
    assert len(list((root / "data").glob("*/*.parquet"))) == 2  # the leftover is there...
    lines = recover(root, discard=True)  # ...until the operator discards the episode
    assert any("discarded" in x for x in lines)
    assert len(list((root / "data").glob("*/*.parquet"))) == 1
    assert len(list((root / "meta" / "episodes").glob("*/*.parquet"))) == 1
    ds = RecordedDataset(root)
    assert ds.num_episodes == 1 and ds.tasks == ["t"] and ds.validate() == []


def test_the_doctor_waits_for_no_one_and_touches_nothing_in_use(tmp_path):
    root = tmp_path / "d"
    session, rec = _recorder(root)
    try:
        rec.start("t").result(timeout=10)
        session.run(ticks=5)
        with pytest.raises(DatasetError, match="another process"):
            recover(root)  # a live recording: its log is not recovered under it
        assert rec.stop().result(timeout=10) == 0
    finally:
        rec.close()
        session.close()


def test_a_recorder_bug_or_a_slow_disk_fails_loudly_and_never_blocks_the_loop(
    tmp_path, monkeypatch
):
    from teleop_app.recording import wal

    def broken(episode, frames):
        raise ValueError("a bug in a progress callback")

    session, rec = _recorder(tmp_path / "a", sync_s=0.01, on_sync=broken)
    try:
        rec.start("t").result(timeout=10)
        for _ in range(50):
            session.run(ticks=1)
            time.sleep(0.005)
            if rec.state == "failed":
                break
        assert rec.state == "failed" and "ValueError" in rec.message
        assert rec._thread.is_alive()
    finally:
        rec.close()
        session.close()

    real = wal.WalWriter.append

    def slow(self, row):
        time.sleep(0.2)
        real(self, row)

    monkeypatch.setattr(wal.WalWriter, "append", slow)
    session, rec = _recorder(tmp_path / "b")
    try:
        rec.start("t").result(timeout=10)
        t0 = time.perf_counter()
        session.run(ticks=100)  # fast mode: 100 ticks in well under the 20 s the disk needs
        assert time.perf_counter() - t0 < 10
        assert rec.state == "failed" and "cannot keep up" in rec.message
    finally:
        monkeypatch.undo()
        rec.close()
        session.close()


def test_stats_ignore_absent_values_across_episodes():
    from teleop_app.recording.dataset import aggregate_stats, column_stats

    a = column_stats(np.array([1.0, 2.0]))
    b = column_stats(np.full(100, np.nan))  # an episode where the value never came
    c = aggregate_stats([a, b])
    assert c["min"][0] == 1.0 and c["max"][0] == 2.0 and c["mean"][0] == pytest.approx(1.5)
    assert c["count"][0] == 102
    d = aggregate_stats([b, b])
    assert np.isnan(d["mean"][0])  # nothing anywhere: NaN here, 0 in stats.json


def test_validate_finds_leftovers_and_stale_stats(tmp_path):
    import shutil

    root = tmp_path / "d"
    record(root, episodes=2, ticks=10)
    assert RecordedDataset(root).validate() == []
    extra = root / "data" / "chunk-000" / "file-005.parquet"
    shutil.copy(root / "data" / "chunk-000" / "file-001.parquet", extra)
    stats = json.loads((root / "meta" / "stats.json").read_text())
    stats["index"]["count"] = [10]
    (root / "meta" / "stats.json").write_text(json.dumps(stats))
    problems = RecordedDataset(root).validate()
    assert any("file-005.parquet belongs to no episode" in p for p in problems)
    assert any("stats.json counts 10 frames" in p for p in problems)
    out = subprocess.run(
        [*DEXTELEOP, "dataset", "doctor", str(root)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout  # the doctor removes the leftover, redoes stats
    assert not extra.exists() and RecordedDataset(root).validate() == []
    # and what it cannot repair, it reports (exit status 1)
    tasks = root / "meta" / "tasks.parquet"
    tasks.unlink()
    out = subprocess.run(
        [*DEXTELEOP, "dataset", "doctor", str(root)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1 and "problem: 0 tasks" in out.stdout
