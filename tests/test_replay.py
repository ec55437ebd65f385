"""The replay device in real time and on a virtual clock."""

import time

import numpy as np
import pytest

from devices.clock import RealClock, SimClock
from devices.inputs import DEVICES, ClipFormatError
from devices.inputs.clips import generate_clip, save_clip


@pytest.fixture
def clip_path(tmp_path):
    path = tmp_path / "c.npz"
    save_clip(generate_clip("finger_wave", duration_s=1.0, rate_hz=30.0, seed=0), path)
    return path


def test_virtual_clock_plays_the_frame_due(clip_path):
    dev = DEVICES.make("replay", path=str(clip_path))
    clock = SimClock(start=100.0)
    dev.connect(clock)
    f0 = dev.latest()
    assert f0.seq == 0 and f0.t == pytest.approx(100.0)
    clock.sleep_until(100.5)
    f = dev.latest()
    assert f.seq == 15 and f.t == pytest.approx(100.5)
    np.testing.assert_allclose(f.keypoints, dev.clip.keypoints[15])
    clock.sleep_until(100.0 + dev._period + 0.01)  # wrapped around: a later, new frame
    f = dev.latest()
    assert f.seq == len(dev.clip) and f.t > 100.5
    dev.disconnect()


def test_no_loop_stops_at_the_last_frame(clip_path):
    dev = DEVICES.make("replay", path=str(clip_path), loop=False)
    clock = SimClock()
    dev.connect(clock)
    clock.sleep_until(5.0)
    assert dev.latest().seq == len(dev.clip) - 1
    clock.sleep_until(6.0)
    assert dev.latest().seq == len(dev.clip) - 1


def test_real_time_thread_publishes_at_the_clip_rate(clip_path):
    dev = DEVICES.make("replay", path=str(clip_path))
    dev.connect(RealClock())
    try:
        time.sleep(0.6)
        status = dev.status()
    finally:
        dev.disconnect()
    assert status.connected
    assert 15 <= status.frames <= 21  # 30 Hz for 0.6 s
    assert 25.0 < status.rate_hz < 35.0
    assert status.frame_age_s is not None and status.frame_age_s < 0.1


def test_bundled_demo_clip_and_bad_files(tmp_path):
    dev = DEVICES.make("replay")
    assert dev.path.name == "demo.npz" and dev.clip.duration_s > 20
    bad = tmp_path / "bad.npz"
    np.savez(
        bad, t=np.arange(5.0), keypoints=np.zeros((5, 20, 3)), wrist=np.tile(np.eye(4), (5, 1, 1))
    )
    with pytest.raises(ClipFormatError, match="keypoints"):
        DEVICES.make("replay", path=str(bad))
    with pytest.raises(ClipFormatError):
        DEVICES.make("replay", path=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="speed"):
        DEVICES.make("replay", speed=0.0)
