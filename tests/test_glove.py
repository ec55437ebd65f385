"""The glove UDP protocol (encode / decode / fuzz), its receiver device and the clip sender."""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.inputs import DEVICES
from devices.inputs import glove as glove_mod
from devices.inputs.clips import Clip, generate_clip, save_clip
from devices.inputs.glove import (
    DEVICE_REASONS,
    MAX_PACKET_BYTES,
    PACKET_REASONS,
    GloveDevice,
    GlovePacket,
    GlovePacketError,
    decode_packet,
    encode_packet,
    stream_clip,
)
from devices.inputs.human_hand import DEFAULT_HAND, JOINT_LOWER, JOINT_UPPER, OPEN_POSE
from devices.inputs.validate import IMPLAUSIBLE_HAND_REASONS, frame_problem, hand_problem
from devices.tick import HumanFrame


def _fuzz(examples: int) -> settings:
    """Hypothesis settings of the fuzz tests: fixed seed (derandomized), no database."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


CLIP = generate_clip("finger_wave", duration_s=1.0, rate_hz=30.0, seed=0)
KP = CLIP.keypoints[10]
WRIST = CLIP.wrist[10]
ANGLES = np.clip(OPEN_POSE + 0.3, JOINT_LOWER, JOINT_UPPER)


def _base(**fields: Any) -> dict[str, Any]:
    """A valid packet map (keypoints payload), with ``fields`` overriding or added."""
    obj: dict[str, Any] = {
        "v": 1,
        "seq": 7,
        "t": 12.5,
        "hand": "right",
        "keypoints": [float(x) for x in KP.ravel()],
        "wrist": [float(x) for x in WRIST.ravel()],
        "confidence": 0.9,
    }
    obj.update(fields)
    return {k: v for k, v in obj.items() if v is not _DROP}


_DROP = object()


def _pack(obj: object, fmt: str = "msgpack") -> bytes:
    """Serialise without validation (JSON allows NaN tokens here)."""
    if fmt == "json":
        return json.dumps(obj).encode("utf-8")
    return msgpack.packb(obj, use_bin_type=True)


def _check_accepted(pkt: GlovePacket) -> None:
    """Every invariant a decoded packet promises."""
    assert isinstance(pkt, GlovePacket)
    assert pkt.version == 1
    assert isinstance(pkt.seq, int) and 0 <= pkt.seq < 2**63
    assert isinstance(pkt.t, float) and math.isfinite(pkt.t)
    assert pkt.hand in ("right", "left")
    assert (pkt.keypoints is None) != (pkt.angles is None)
    assert 0.0 <= pkt.confidence <= 1.0
    if pkt.keypoints is not None:
        assert pkt.keypoints.shape == (21, 3) and pkt.keypoints.dtype == np.float64
        assert np.all(np.isfinite(pkt.keypoints))
        assert np.linalg.norm(pkt.keypoints, axis=1).max() <= 0.5
        assert not pkt.keypoints.flags.writeable
    if pkt.angles is not None:
        assert pkt.angles.shape == (20,) and np.all(np.isfinite(pkt.angles))
        assert np.all(pkt.angles >= JOINT_LOWER - 0.5) and np.all(pkt.angles <= JOINT_UPPER + 0.5)
    if pkt.wrist is not None:
        w = pkt.wrist
        assert w.shape == (4, 4) and np.all(np.isfinite(w))
        np.testing.assert_allclose(w[3], [0, 0, 0, 1], atol=1e-6)
        np.testing.assert_allclose(w[:3, :3].T @ w[:3, :3], np.eye(3), atol=1e-3)
        assert np.linalg.det(w[:3, :3]) > 0.99
    frame = pkt.to_frame(1.0)
    # The protocol bounds the keypoints, not their anatomy: a decoded hand may still be no
    # human's (all zero: a glove that lost tracking), which the session refuses by reason.
    problem = frame_problem(frame, last_t=None, min_confidence=0.0)
    if problem is not None:
        assert problem in IMPLAUSIBLE_HAND_REASONS
        assert problem == hand_problem(frame.keypoints)


def _decode_or_reason(data: bytes) -> GlovePacket | str:
    """The decoded packet (checked), or the rejection reason; any other exception fails."""
    try:
        pkt = decode_packet(data)
    except GlovePacketError as err:
        assert err.reason in PACKET_REASONS, err.reason
        assert str(err)
        return err.reason
    _check_accepted(pkt)
    return pkt


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_round_trip_keypoints(fmt):
    data = encode_packet(5, 3.25, keypoints=KP, wrist=WRIST, confidence=0.75, fmt=fmt)
    assert len(data) <= MAX_PACKET_BYTES
    assert data[:1] == b"{" if fmt == "json" else data[:1] != b"{"
    pkt = decode_packet(data)
    _check_accepted(pkt)
    assert (pkt.seq, pkt.t, pkt.hand, pkt.confidence) == (5, 3.25, "right", 0.75)
    assert pkt.angles is None
    np.testing.assert_array_equal(pkt.keypoints, KP)
    np.testing.assert_array_equal(pkt.wrist, WRIST)


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_round_trip_angles(fmt):
    data = encode_packet(0, 0.0, angles=ANGLES, hand="left", fmt=fmt)
    pkt = decode_packet(data)
    _check_accepted(pkt)
    assert pkt.keypoints is None and pkt.wrist is None and pkt.hand == "left"
    assert pkt.confidence == 1.0
    np.testing.assert_array_equal(pkt.angles, ANGLES)
    np.testing.assert_allclose(pkt.hand_keypoints(), DEFAULT_HAND.keypoints(ANGLES))
    frame = pkt.to_frame(4.0)
    np.testing.assert_array_equal(frame.wrist, np.eye(4))
    assert frame.t == 4.0 and frame.seq == 0


def test_accepted_variants():
    nested = [[float(v) for v in row] for row in KP]
    for obj in (
        _base(keypoints=nested, wrist=[[float(v) for v in r] for r in WRIST]),
        _base(extra_field={"anything": [1, 2]}, future=None),  # unknown fields ignored
        _base(wrist=None, confidence=None),  # null = absent
        _base(keypoints=[0] * 63, t=5),  # ints are numbers
        _base(keypoints=None, angles=[float(a) for a in JOINT_UPPER + 0.4]),  # within margin
    ):
        for fmt in ("msgpack", "json"):
            assert isinstance(_decode_or_reason(_pack(obj, fmt)), GlovePacket), obj
    # float32 MessagePack and JSON with leading whitespace
    f32 = msgpack.packb(_base(), use_single_float=True)
    np.testing.assert_allclose(decode_packet(f32).keypoints, KP, atol=1e-7)
    assert decode_packet(b"\n  " + _pack(_base(), "json")).seq == 7
    # clipped into the joint limits before the hand model
    over = decode_packet(_pack(_base(keypoints=None, angles=list(JOINT_UPPER + 0.4))))
    np.testing.assert_allclose(over.hand_keypoints(), DEFAULT_HAND.keypoints(JOINT_UPPER))


def test_encode_rejects_bad_arguments():
    with pytest.raises(GlovePacketError) as err:
        encode_packet(0, 0.0)
    assert err.value.reason == "missing_field"
    with pytest.raises(GlovePacketError) as err:
        encode_packet(0, 0.0, keypoints=KP, angles=ANGLES)
    assert err.value.reason == "bad_type"
    with pytest.raises(GlovePacketError) as err:
        encode_packet(0, float("nan"), keypoints=KP)
    assert err.value.reason == "non_finite"
    with pytest.raises(ValueError, match="shape"):
        encode_packet(0, 0.0, keypoints=np.zeros((20, 3)))
    with pytest.raises(ValueError, match="fmt"):
        encode_packet(0, 0.0, keypoints=KP, fmt="xml")


# ---------------------------------------------------------------------------- malformations
_ROT_BAD = np.eye(4)
_ROT_BAD[0, 0] = 2.0
_REFLECT = np.diag([1.0, -1.0, 1.0, 1.0])
_FAR = KP.copy()
_FAR[8] = [0.6, 0.0, 0.0]
_SHIFTED = KP + np.array([0.05, 0.0, 0.0])
_TRANSLATED = np.eye(4)
_TRANSLATED[0, 3] = 1e3

MALFORMED: dict[str, tuple[str, bytes]] = {
    "huge": ("too_large", b"\x00" * (MAX_PACKET_BYTES + 1)),
    "huge_valid_json": ("too_large", _pack(_base(pad="x" * 5000), "json")),
    "empty": ("not_decodable", b""),
    "garbage": ("not_decodable", b"\xc1\xff\x00garbage"),
    "bad_json": ("not_decodable", b'{"v": 1, "seq": '),
    "bad_utf8_json": ("not_decodable", b'{"v": "\xff\xfe"}'),
    "deep_json": ("not_decodable", b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}"),
    "trailing_msgpack": ("not_decodable", _pack(_base()) + b"\x01"),
    "truncated_msgpack": ("not_decodable", _pack(_base())[:-5]),
    "list": ("not_a_map", _pack([1, 2, 3])),
    "string": ("not_a_map", _pack("hello")),
    "v2": ("bad_version", _pack(_base(v=2))),
    "v0": ("bad_version", _pack(_base(v=0), "json")),
    "no_v": ("missing_field", _pack(_base(v=_DROP))),
    "no_seq": ("missing_field", _pack(_base(seq=_DROP))),
    "no_t": ("missing_field", _pack(_base(t=_DROP), "json")),
    "no_hand": ("missing_field", _pack(_base(hand=_DROP))),
    "no_payload": ("missing_field", _pack(_base(keypoints=_DROP))),
    "v_str": ("bad_type", _pack(_base(v="1"))),
    "v_float": ("bad_type", _pack(_base(v=1.0))),
    "seq_float": ("bad_type", _pack(_base(seq=1.5))),
    "seq_bool": ("bad_type", _pack(_base(seq=True), "json")),
    "t_str": ("bad_type", _pack(_base(t="now"))),
    "hand_int": ("bad_type", _pack(_base(hand=1))),
    "kp_str": ("bad_type", _pack(_base(keypoints="points"))),
    "kp_item_str": ("bad_type", _pack(_base(keypoints=["x"] * 63))),
    "kp_item_bool": ("bad_type", _pack(_base(keypoints=[True] * 63), "json")),
    "both_payloads": ("bad_type", _pack(_base(angles=list(ANGLES)))),
    "conf_str": ("bad_type", _pack(_base(confidence="high"))),
    "kp_62": ("wrong_shape", _pack(_base(keypoints=[0.0] * 62))),
    "kp_20x3": ("wrong_shape", _pack(_base(keypoints=[[0.0] * 3] * 20))),
    "kp_21x2": ("wrong_shape", _pack(_base(keypoints=[[0.0] * 2] * 21))),
    "angles_19": ("wrong_shape", _pack(_base(keypoints=None, angles=[0.0] * 19))),
    "wrist_15": ("wrong_shape", _pack(_base(wrist=[0.0] * 15))),
    "kp_nan": ("non_finite", _pack(_base(keypoints=[float("nan")] * 63))),
    "kp_nan_json": ("non_finite", _pack(_base(keypoints=[float("nan")] + [0.0] * 62), "json")),
    "t_inf": ("non_finite", _pack(_base(t=float("inf")))),
    "json_1e999": ("non_finite", b'{"v":1,"seq":0,"t":1e999,"hand":"right","angles":[]}'),
    "wrist_nan": ("non_finite", _pack(_base(wrist=[float("nan")] * 16))),
    "conf_nan": ("non_finite", _pack(_base(confidence=float("nan")))),
    "seq_negative": ("out_of_range", _pack(_base(seq=-1))),
    "seq_huge": ("out_of_range", _pack(_base(seq=2**70), "json")),
    "t_huge_int": ("out_of_range", _pack(_base(t=10**400), "json")),
    "hand_other": ("out_of_range", _pack(_base(hand="middle"))),
    "kp_far": ("out_of_range", _pack(_base(keypoints=list(_FAR.ravel())))),
    "kp_not_wrist_frame": ("out_of_range", _pack(_base(keypoints=list(_SHIFTED.ravel())))),
    "kp_1e300": ("out_of_range", _pack(_base(keypoints=[1e300] * 63))),
    "angles_far": (
        "out_of_range",
        _pack(_base(keypoints=None, angles=list(np.where(np.arange(20) == 5, 3.0, 0.0)))),
    ),
    "conf_2": ("out_of_range", _pack(_base(confidence=2.0))),
    "conf_negative": ("out_of_range", _pack(_base(confidence=-0.1))),
    "wrist_far": ("out_of_range", _pack(_base(wrist=list(_TRANSLATED.ravel())))),
    "wrist_scaled": ("bad_pose", _pack(_base(wrist=list(_ROT_BAD.ravel())))),
    "wrist_reflection": ("bad_pose", _pack(_base(wrist=list(_REFLECT.ravel())))),
    "wrist_last_row": ("bad_pose", _pack(_base(wrist=[1.0] * 16))),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_packet_reason(name):
    reason, data = MALFORMED[name]
    with pytest.raises(GlovePacketError) as err:
        decode_packet(data)
    assert err.value.reason == reason, str(err.value)
    assert isinstance(err.value, ValueError)


def test_every_packet_reason_is_exercised():
    assert {reason for reason, _ in MALFORMED.values()} == set(PACKET_REASONS)


# ---------------------------------------------------------------------------- fuzzing
@_fuzz(2000)
@given(st.binary(max_size=MAX_PACKET_BYTES + 8))
def test_fuzz_random_bytes(data):
    assert isinstance(_decode_or_reason(data), str)


@_fuzz(1000)
@given(st.binary(max_size=200).map(lambda b: b"{" + b))
def test_fuzz_random_json_looking_bytes(data):
    assert isinstance(_decode_or_reason(data), str)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = ("v", "seq", "t", "hand", "keypoints", "angles", "wrist", "confidence")


def _numeric(n: int, width: int, scale: float, seed: int, poison: Any) -> list[Any]:
    """``n * width`` random numbers in [-scale, scale], as rows of ``width`` if ``width > 1``.

    One of them is replaced by ``poison`` unless it is ``_DROP``.
    """
    rng = np.random.default_rng(seed)
    flat: list[Any] = rng.uniform(-scale, scale, n * width).tolist()
    if poison is not _DROP:
        flat[int(rng.integers(len(flat)))] = poison
    if width == 1:
        return flat
    return [flat[i : i + width] for i in range(0, len(flat), width)]


# Arrays near the expected sizes (63, 21x3, 20, 16, 4x4), mostly plausible, sometimes poisoned.
_ARRAYS = st.builds(
    _numeric,
    st.sampled_from([15, 16, 17, 19, 20, 21, 22, 62, 63, 64]),
    st.sampled_from([1, 1, 2, 3, 4]),
    st.sampled_from([0.05, 0.2, 0.6, 1.0, 2.5, 1e3]),
    st.integers(0, 2**32 - 1),
    st.just(_DROP) | _SCALARS,
)
_FORMAT = st.sampled_from(["msgpack", "json"])
_FIELD_VALUES = (
    _VALUES | st.sampled_from([1, 2, 0, -1, "right", "left", 0.5, 2**63, 1e308]) | _ARRAYS
)


@_fuzz(600)
@given(_VALUES | st.dictionaries(st.sampled_from(_FIELDS), _FIELD_VALUES, max_size=8), _FORMAT)
def test_fuzz_random_objects(obj, fmt):
    _decode_or_reason_obj(obj, fmt)


def _kp_like(seed: int, noise: float, nested: bool, poison: Any) -> list[Any]:
    """KP plus Gaussian noise (m), flat or nested, maybe with one value poisoned."""
    rng = np.random.default_rng(seed)
    kp = (KP + rng.normal(0.0, noise, KP.shape)).tolist()
    if poison is not _DROP:
        kp[int(rng.integers(21))][int(rng.integers(3))] = poison
    return kp if nested else [x for row in kp for x in row]


def _angles_like(seed: int, noise: float, poison: Any) -> list[Any]:
    rng = np.random.default_rng(seed)
    angles = (ANGLES + rng.normal(0.0, noise, 20)).tolist()
    if poison is not _DROP:
        angles[int(rng.integers(20))] = poison
    return angles


def _wrist_like(seed: int, noise: float, reach: float, flip: bool) -> list[float]:
    """A random rotation (optionally reflected, noisy) with a translation of size ``reach``."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    w = np.eye(4)
    w[:3, :3] = q @ np.diag([1.0, 1.0, -1.0 if flip else 1.0]) + rng.normal(0.0, noise, (3, 3))
    w[:3, 3] = rng.normal(0.0, reach, 3)
    return w.ravel().tolist()


_POISON = st.sampled_from(
    [math.nan, math.inf, -math.inf, "x", 1e300, -1e300, 2**64 - 1, -1, None, True, [], {}]
)
_JUNK = _POISON | _ARRAYS | _SCALARS


@st.composite
def _structured(draw: st.DrawFn) -> dict[str, Any]:
    """A packet map whose fields are each usually valid and sometimes junk."""

    def chance(percent: int) -> bool:
        return draw(st.integers(0, 99)) < percent

    def poison() -> Any:
        return draw(_JUNK) if chance(10) else _DROP

    def field(valid: Any) -> Any:
        return draw(_JUNK) if chance(8) else valid

    seed = draw(st.integers(0, 2**32 - 1))
    obj: dict[str, Any] = {
        "v": field(1),
        "seq": field(draw(st.integers(0, 2**63 - 1))),
        "t": field(draw(st.floats(allow_nan=False, allow_infinity=False))),
        "hand": field(draw(st.sampled_from(["right", "left"]))),
    }
    payload = draw(st.integers(0, 19))
    if payload < 10 or payload == 19:
        noise = draw(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.1, 0.3]))
        obj["keypoints"] = field(_kp_like(seed, noise, draw(st.booleans()), poison()))
    if payload >= 10:
        noise = draw(st.sampled_from([0.0, 0.1, 0.5, 1.5]))
        obj["angles"] = field(_angles_like(seed, noise, poison()))
    if chance(50):
        noise = draw(st.sampled_from([0.0, 0.0, 0.0, 1e-5, 1e-3, 0.1]))
        reach = draw(st.sampled_from([0.1, 1.0, 60.0, 200.0]))
        obj["wrist"] = field(_wrist_like(seed, noise, reach, chance(10)))
    if chance(50):
        obj["confidence"] = field(draw(st.floats(-0.2, 1.2)))
    if chance(20):
        obj[draw(st.text(max_size=6))] = draw(_SCALARS)
    if chance(10):
        del obj[draw(st.sampled_from(sorted(obj)))]
    return obj


@_fuzz(2000)
@given(_structured(), _FORMAT)
def test_fuzz_structured_objects(obj, fmt):
    _decode_or_reason_obj(obj, fmt)


def _decode_or_reason_obj(obj: object, fmt: str) -> None:
    try:
        data = _pack(obj, fmt)
    except (TypeError, ValueError, OverflowError):  # not representable in that format
        return
    _decode_or_reason(data)


_VALID_PACKETS = [
    encode_packet(3, 1.0, keypoints=KP, wrist=WRIST, confidence=0.5, fmt="msgpack"),
    encode_packet(4, 2.0, keypoints=KP, fmt="json"),
    encode_packet(5, 3.0, angles=ANGLES, wrist=WRIST, fmt="msgpack"),
    encode_packet(6, 4.0, angles=ANGLES, hand="left", fmt="json"),
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A valid packet with one structural or byte-level mutation."""
    data = draw(st.sampled_from(_VALID_PACKETS))
    kind = draw(st.sampled_from(["truncate", "flip", "value", "element", "length"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= draw(st.integers(1, 255))
        return bytes(buf)
    is_json = data[:1] == b"{"
    obj = json.loads(data) if is_json else msgpack.unpackb(data)
    key = draw(st.sampled_from(sorted(obj)))
    if kind == "value":
        obj[key] = draw(_POISON)
    elif isinstance(obj[key], list):
        items = list(obj[key])
        if kind == "element":
            items[draw(st.integers(0, len(items) - 1))] = draw(_POISON | st.floats())
        else:
            n = draw(st.integers(0, len(items) + 3))
            items = (items + items)[:n]
        obj[key] = items
    else:
        obj[key] = draw(_POISON)
    return _pack(obj, "json" if is_json else "msgpack")


@_fuzz(2500)
@given(_mutated())
def test_fuzz_mutated_valid_packets(data):
    _decode_or_reason(data)


def test_decode_rejects_non_bytes():
    with pytest.raises(TypeError):
        decode_packet("{}")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- device
def _record(dev: GloveDevice) -> list[HumanFrame]:
    """Record every frame ``dev`` publishes (wraps its ``_publish``)."""
    frames: list[HumanFrame] = []
    publish = dev._publish

    def record(frame: HumanFrame) -> None:
        frames.append(frame)
        publish(frame)

    dev._publish = record  # type: ignore[method-assign]
    return frames


def _wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


@pytest.fixture
def device():
    dev = DEVICES.make("glove", port=0)
    dev.connect()
    yield dev
    dev.disconnect()


@pytest.fixture
def raw():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield sock
    sock.close()


def test_registered_and_available():
    assert "glove" in DEVICES.names()
    assert DEVICES.get("glove") is GloveDevice
    assert GloveDevice.availability() is None
    with pytest.raises(ValueError, match="hand"):
        DEVICES.make("glove", hand="both")
    with pytest.raises(ValueError, match="port"):
        DEVICES.make("glove", port=70000)


def _short_clip(duration_s: float, rate_hz: float = 30.0) -> Clip:
    return generate_clip("open_close", duration_s=duration_s, rate_hz=rate_hz, seed=1)


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_loopback_stream_clip(device, fmt):
    frames = _record(device)
    clip = _short_clip(1.0)
    sent: list[int] = []
    start = time.monotonic()
    thread = threading.Thread(
        target=lambda: sent.append(stream_clip(clip, port=device.port, speed=4.0, fmt=fmt))
    )
    thread.start()
    thread.join(timeout=5.0)
    assert sent == [len(clip)]
    assert time.monotonic() - start >= clip.duration_s / 4.0 * 0.9  # paced, not a burst
    assert _wait_for(lambda: len(frames) == len(clip))
    assert [f.seq for f in frames] == list(range(len(clip)))
    for i, f in enumerate(frames):
        np.testing.assert_allclose(f.keypoints, clip.keypoints[i], atol=1e-6)
        np.testing.assert_allclose(f.wrist, clip.wrist[i], atol=1e-6)
        assert f.confidence == 1.0
    ts = [f.t for f in frames]
    assert all(b >= a for a, b in itertools.pairwise(ts))
    assert ts[-1] <= time.monotonic()  # stamped on the receiver's clock at arrival
    status, stats = device.status(), device.stats()
    assert status.frames == len(clip) and status.errors == 0 and status.rejected == {}
    assert (stats.received, stats.accepted, stats.lost, stats.senders) == (
        len(clip),
        len(clip),
        0,
        1,
    )
    np.testing.assert_allclose(device.latest().keypoints, clip.keypoints[-1], atol=1e-6)


def test_injected_bad_datagrams_are_counted_not_published(device, raw):
    frames = _record(device)
    addr = ("127.0.0.1", device.port)

    def send(seq: int, t: float, **kw: Any) -> None:
        raw.sendto(encode_packet(seq, t, keypoints=KP, **kw), addr)

    send(0, 0.0)
    send(1, 0.1)
    send(1, 0.1)  # duplicate
    send(0, 0.0)  # out of order
    raw.sendto(b"\x00garbage\xff", addr)  # not_decodable
    raw.sendto(_pack(_base(seq=2, keypoints=[math.nan] * 63)), addr)  # non_finite
    raw.sendto(_pack(_base(seq=2, keypoints=[math.nan] * 63), "json"), addr)  # non_finite
    raw.sendto(b"{" + b" " * MAX_PACKET_BYTES + b"}", addr)  # too_large
    send(2, 0.2, hand="left")  # wrong_hand, but in the sender's sequence
    send(3, 0.3)
    send(7, 0.7)  # seq 4, 5, 6 never arrived: 3 lost
    send(8, 0.8)
    assert _wait_for(lambda: device.stats().received == 12)
    assert [f.seq for f in frames] == [0, 1, 3, 7, 8]
    assert all(np.all(np.isfinite(f.keypoints)) for f in frames)
    status, stats = device.status(), device.stats()
    assert status.rejected == {
        "duplicate": 1,
        "out_of_order": 1,
        "not_decodable": 1,
        "non_finite": 2,
        "too_large": 1,
        "wrong_hand": 1,
    }
    assert set(status.rejected) <= set(PACKET_REASONS) | set(DEVICE_REASONS)
    assert status.errors == 7 and status.frames == 5
    assert "wrong_hand" in status.message
    assert (stats.accepted, stats.lost, stats.restarts) == (5, 3, 0)
    assert device._thread is not None and device._thread.is_alive()


def test_sequence_restart_and_senders(device, raw, monkeypatch):
    frames = _record(device)
    addr = ("127.0.0.1", device.port)
    for seq in (5000, 5001, 3999, 4000):  # > 1000 below: a restarted sender
        raw.sendto(encode_packet(seq, 0.0, keypoints=KP), addr)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:  # its own sequence
        other.sendto(encode_packet(0, 0.0, keypoints=KP), addr)
        assert _wait_for(lambda: device.stats().received == 5)
    assert sorted(f.seq for f in frames) == [0, 3999, 4000, 5000, 5001]
    stats = device.stats()
    assert (stats.lost, stats.restarts, stats.senders) == (0, 1, 2)
    assert device.status().rejected == {}
    # after SENDER_IDLE_RESET_S without accepted packets, a lower seq restarts the sequence
    monkeypatch.setattr("devices.inputs.glove.device.SENDER_IDLE_RESET_S", 0.1)
    time.sleep(0.15)
    raw.sendto(encode_packet(10, 0.0, keypoints=KP), addr)
    raw.sendto(encode_packet(9, 0.0, keypoints=KP), addr)  # but not right after
    assert _wait_for(lambda: device.stats().received == 7)
    assert frames[-1].seq == 10 and device.status().rejected == {"out_of_order": 1}
    assert device.stats().restarts == 2


def test_angles_mode_matches_clip(device):
    frames = _record(device)
    clip = generate_clip("pinch_index", duration_s=0.5, rate_hz=20.0, seed=0)
    n = stream_clip(clip, port=device.port, speed=5.0, as_angles=True)
    assert n == len(clip)
    assert _wait_for(lambda: len(frames) == len(clip))
    err = np.array(
        [np.linalg.norm(f.keypoints - clip.keypoints[i], axis=1) for i, f in enumerate(frames)]
    )
    assert err.max() < 0.003, err.max()


def test_stream_clip_loop_and_stop(device):
    frames = _record(device)
    clip = _short_clip(0.2, rate_hz=50.0)  # 11 frames, 0.22 s a loop
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(stream_clip(clip, port=device.port, loop=True, stop=stop))
    )
    thread.start()
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=1.0)
    assert not thread.is_alive()
    assert len(clip) < result[0] < 3 * len(clip) + 2
    assert _wait_for(lambda: len(frames) == result[0])
    assert [f.seq for f in frames] == list(range(result[0]))


def test_stream_clip_rejects_bad_input():
    with pytest.raises(ValueError, match="speed"):
        stream_clip(CLIP, port=9, speed=0.0)
    bad = Clip(t=CLIP.t, keypoints=CLIP.keypoints + np.array([0.1, 0.0, 0.0]), wrist=CLIP.wrist)
    with pytest.raises(ValueError, match="frame 0"):
        stream_clip(bad, port=9)


def test_main_streams_a_file(tmp_path, raw):
    path = tmp_path / "clip.npz"
    save_clip(_short_clip(0.1, rate_hz=50.0), path)
    raw.bind(("127.0.0.1", 0))
    raw.settimeout(2.0)
    port = raw.getsockname()[1]
    assert glove_mod.main([str(path), "--port", str(port), "--speed", "10", "--json"]) == 0
    packets = [decode_packet(raw.recv(65536)) for _ in range(6)]
    assert [p.seq for p in packets] == list(range(6))
    assert glove_mod.main([str(tmp_path / "missing.npz"), "--port", str(port)]) == 1


def test_disconnect_is_prompt_and_frees_the_port():
    dev = DEVICES.make("glove", port=0)
    dev.connect()
    port = dev.port
    assert isinstance(port, int) and port > 0
    time.sleep(0.1)
    start = time.monotonic()
    dev.disconnect()
    assert time.monotonic() - start < 0.5
    assert dev.port is None and not dev.status().connected
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # free again


def test_port_in_use_is_a_clear_error(raw):
    raw.bind(("127.0.0.1", 0))
    port = raw.getsockname()[1]
    dev = DEVICES.make("glove", port=port)
    with pytest.raises(OSError, match="already in use"):
        dev.connect()
    assert not dev.status().connected


def test_receiver_survives_internal_errors(device, raw, monkeypatch):
    frames = _record(device)
    addr = ("127.0.0.1", device.port)
    real = GlovePacket.to_frame
    calls = {"n": 0}

    def flaky(self: GlovePacket, t: float, model: Any = None) -> HumanFrame:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real(self, t, model)

    monkeypatch.setattr(GlovePacket, "to_frame", flaky)
    raw.sendto(encode_packet(0, 0.0, keypoints=KP), addr)
    raw.sendto(encode_packet(1, 0.0, keypoints=KP), addr)
    assert _wait_for(lambda: len(frames) == 1)
    assert frames[0].seq == 1
    assert device.status().rejected == {"internal_error": 1}


def test_left_hand_receiver(raw):
    dev = DEVICES.make("glove", port=0, hand="left")
    with dev:
        frames = _record(dev)
        addr = ("127.0.0.1", dev.port)
        raw.sendto(encode_packet(0, 0.0, angles=ANGLES, hand="left", fmt="json"), addr)
        raw.sendto(encode_packet(1, 0.0, angles=ANGLES, hand="right"), addr)
        raw.sendto(encode_packet(2, 0.0, angles=ANGLES, hand="left"), addr)
        assert _wait_for(lambda: dev.stats().received == 3)
        assert [f.seq for f in frames] == [0, 2]
        assert dev.status().rejected == {"wrong_hand": 1} and dev.stats().lost == 0
        np.testing.assert_allclose(frames[0].keypoints, DEFAULT_HAND.keypoints(ANGLES))
