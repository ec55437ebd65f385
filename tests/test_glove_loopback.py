"""End to end on 127.0.0.1: the glove sender streams a clip, the session drives the sim hand."""

import itertools
import socket
import threading
import time

import msgpack
import numpy as np

from devices.clock import RealClock
from devices.inputs import DEVICES
from devices.inputs.clips import generate_clip
from devices.inputs.glove import encode_packet, stream_clip
from teleop_app.session import Session, SessionConfig


def test_glove_loopback_drives_the_hand_in_order_and_counts_bad_packets():
    clip = generate_clip("pinch_index", duration_s=2.0, rate_hz=50.0, seed=0)
    device = DEVICES.make("glove", host="127.0.0.1", port=0)
    session = Session(SessionConfig(fast=False, device="glove"), clock=RealClock(), device=device)
    recs = []
    session.subscribe(recs.append)
    with session:
        port = device.port
        sender = threading.Thread(target=stream_clip, args=(clip, "127.0.0.1", port), daemon=True)
        sender.start()
        time.sleep(0.3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            # from another sender: one good packet, then its duplicate, an older one, garbage
            kp = clip.keypoints[0]
            raw.sendto(encode_packet(100, 0.0, keypoints=kp), ("127.0.0.1", port))
            raw.sendto(encode_packet(100, 0.0, keypoints=kp), ("127.0.0.1", port))
            raw.sendto(encode_packet(99, 0.0, keypoints=kp), ("127.0.0.1", port))
            raw.sendto(b"\x00garbage", ("127.0.0.1", port))
            far = {"v": 1, "seq": 102, "t": 0.0, "hand": "right", "keypoints": [9.0] * 63}
            raw.sendto(msgpack.packb(far), ("127.0.0.1", port))  # 9 m from the wrist
        session.run(2.5)
        sender.join(timeout=5)
    rep = session.report()
    dev = rep["device"]
    assert rep["ticks"] == 50 and rep["limit_violations"] == 0
    assert dev["frames_received"] >= 90  # 101 sent at 50 Hz plus one from the raw socket
    rejected = dev["frames_rejected"]
    assert rejected.get("duplicate") == 1 and rejected.get("out_of_order") == 1
    assert rejected.get("not_decodable") == 1 and rejected.get("out_of_range") == 1
    assert dev["packets"]["lost"] == 0
    assert dev["frame_age_ms"]["p99"] > 0
    # the session used the clip's frames in order (seq never goes backwards per sender)
    seqs = [r.command.seq for r in recs if r.frame is not None and r.frame.seq < 100]
    assert len(seqs) > 30 and all(b > a for a, b in itertools.pairwise(seqs))
    # and the hand moved with them: the commanded pinch closes
    gaps = [
        np.linalg.norm(r.command.keypoints[7] - r.command.keypoints[1]) for r in recs if r.command
    ]
    assert min(gaps) < 0.01 < max(gaps)
