"""The Allegro hand v4 CAN protocol: identifiers, scalings and frame codecs.

Shared by the emulated hand (:mod:`devices.robots.emulators.allegro_can`) and the real
hand's backend. Pure functions on ``bytes``; no bus, no threads. Sources: Wonik's ROS1
driver, ``simlabrobotics/allegro_hand_ros_v4`` (``candrv/candef.h`` for the command IDs,
``candrv/pcan.cpp`` for the frame layouts, ``AllegroHandDrv.cpp`` for the replies, the
PWM clamps and the start-up sequence); see ``../shared/HARDWARE-NOTES.md`` section 2.

Wire format. CAN 2.0A, 1 Mbit/s, standard 11-bit identifiers: ``(cmd << 2) | dev_id``, with
a 9-bit command and a 2-bit device ID (0 for a single hand). Host to hand:

======================  ========  =====================================================
command                 data      meaning
======================  ========  =====================================================
0x40 servo on           0 bytes   motors powered; the hand streams what the period asks
0x41 servo off          0 bytes   motors unpowered
0x60+f torque, f 0..3   8 bytes   four int16 LE PWM duty values, one per joint of finger f
0xE0+f pose, f 0..3     8 bytes   four int16 LE counts (firmware position set point)
0x81 period             6 bytes   three int16 LE periods in ms: position, IMU, temperature
                                  (0 = that stream off; the driver sends {3, 0, 0})
0x68 config             6 bytes   device ID (``data[0] = id | 0x80``) or RS-485 baud rate
======================  ========  =====================================================

Requests (a remote frame, DLC 0, whose reply is a data frame with the same identifier):

======================  ========  =====================================================
0x80 info               8 bytes   hardware version (uint16 LE; high byte 4 on a v4),
                                  firmware version (uint16 LE), hand type (0 right, 1
                                  left), temperature (°C), status bits (servo on, high
                                  temperature fault, internal communication fault), 0
0x88 serial             8 bytes   eight ASCII characters (the driver prints "SAH040 ...")
0x20+f position         8 bytes   four int16 LE counts of finger f's joints; the hand also
                                  sends these unasked every position period (3 ms)
0x30 IMU                6 bytes   roll, pitch, yaw (16 bits each; scaling unpublished)
0x38+f temperature      4 bytes   int32 LE, °C, sensor f
======================  ========  =====================================================

Joint order: finger 0 index, 1 middle, 2 ring, 3 thumb, four joints each, base (roll) to
tip; joint ``4 f + j`` is joint ``j`` of finger ``f``. This is ROS1's ``AllegroHandDef.h``
order and our hand spec's (Menagerie ``wonik_allegro``: ffj0..3, mfj0..3, rfj0..3,
thj0..3). Wonik's ROS2 driver puts the thumb first: not this order.

Scalings: a count is 333.3/65536 degree; a torque of 1 N·m is PWM 1200 on a v4 hand at
12 V (800 on v3, not supported here), clamped per joint (:data:`PWM_LIMITS`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------
# identifiers (candef.h)

#: Motors on (host to hand, no data).
CMD_SERVO_ON = 0x40
#: Motors off (host to hand, no data).
CMD_SERVO_OFF = 0x41
#: Torque (PWM) of finger f is ``CMD_TORQUE + f``.
CMD_TORQUE = 0x60
#: Pose set point of finger f is ``CMD_POSE + f`` (unused by the ROS driver's controllers).
CMD_POSE = 0xE0
#: Stream periods (position, IMU, temperature), ms.
CMD_PERIOD = 0x81
#: Device ID or RS-485 baud rate.
CMD_CONFIG = 0x68
#: Request: hardware and firmware versions, hand type, temperature, status.
RTR_INFO = 0x80
#: Request: serial number.
RTR_SERIAL = 0x88
#: Request (and the streamed reply): positions of finger f are ``RTR_POSITION + f``.
RTR_POSITION = 0x20
#: Request: IMU roll, pitch, yaw.
RTR_IMU = 0x30
#: Request: temperature of sensor f is ``RTR_TEMPERATURE + f``.
RTR_TEMPERATURE = 0x38

#: Commands whose empty (or remote) frame asks the hand for a reply.
REQUESTS = frozenset(
    {RTR_INFO, RTR_SERIAL, RTR_IMU}
    | {RTR_POSITION + f for f in range(4)}
    | {RTR_TEMPERATURE + f for f in range(4)}
)

#: Largest command (9 bits: ``cmd << 2`` must fit an 11-bit identifier).
MAX_COMMAND = 0x1FF
#: Largest device ID (2 bits).
MAX_DEVICE_ID = 3

# ---------------------------------------------------------------------------------------
# hand layout

NUM_FINGERS = 4
JOINTS_PER_FINGER = 4
NUM_JOINTS = NUM_FINGERS * JOINTS_PER_FINGER
#: Finger f's name; the CAN order (ROS1 AllegroHandDef.h).
FINGER_NAMES: tuple[str, ...] = ("index", "middle", "ring", "thumb")
#: Joint ``4 f + j``'s name in our hand spec (Menagerie wonik_allegro); the CAN order.
JOINT_NAMES: tuple[str, ...] = tuple(
    f"{p}j{j}" for p in ("ff", "mf", "rf", "th") for j in range(JOINTS_PER_FINGER)
)

# ---------------------------------------------------------------------------------------
# scalings and limits

#: One position count in degrees (AllegroHandDrv.cpp: ``count * 333.3 / 65536``).
DEG_PER_COUNT = 333.3 / 65536.0
#: One position count in radians.
RAD_PER_COUNT = DEG_PER_COUNT * math.pi / 180.0
#: PWM duty per N·m of joint torque on a v4 hand at 12 V (AllegroHandDrv.cpp
#: ``_tau_cov_const``; 800 on v3 at 8 V).
TORQUE_TO_PWM = 1200.0
#: The largest PWM magnitude on a v4 hand at 12 V (``PWM_LIMIT_GLOBAL_12V``).
PWM_LIMIT_GLOBAL = 1200.0
#: (4, 4) largest PWM magnitude per joint, finger-major (AllegroHandDrv.cpp, the 1.5x
#: values): index, middle, ring: roll 375, near 675, middle 450, far 285; thumb 525, 405,
#: 270, 270. All are below the global 1200. Read-only.
PWM_LIMITS = np.array(
    [
        [375.0, 675.0, 450.0, 285.0],
        [375.0, 675.0, 450.0, 285.0],
        [375.0, 675.0, 450.0, 285.0],
        [525.0, 405.0, 270.0, 270.0],
    ]
)
PWM_LIMITS.setflags(write=False)
#: (4, 4) the same limits as joint torques, N·m (Wonik ROS2 ``torque_limits.yaml``).
TORQUE_LIMITS = PWM_LIMITS / TORQUE_TO_PWM
TORQUE_LIMITS.setflags(write=False)
#: The hand's position stream rate, Hz (a 3 ms period, ALLEGRO_CONTROL_TIME_INTERVAL).
CONTROL_HZ = 333.3
#: The position period the ROS driver sets, ms.
DEFAULT_PERIOD_MS = 3

# status bits of the info reply (AllegroHandDrv.cpp)
STATUS_SERVO_ON = 0x01
STATUS_HIGH_TEMPERATURE = 0x02
STATUS_COMM_FAULT = 0x04

# frame lengths, bytes
POSITION_LEN = 8
TORQUE_LEN = 8
PERIOD_LEN = 6
INFO_LEN = 8
SERIAL_LEN = 8
TEMPERATURE_LEN = 4
IMU_LEN = 6

_INT16 = struct.Struct("<4h")
_PERIOD = struct.Struct("<3h")
_INFO = struct.Struct("<HHBBBB")
_TEMPERATURE = struct.Struct("<i")


# ---------------------------------------------------------------------------------------
# identifiers


def arbitration_id(cmd: int, dev_id: int = 0) -> int:
    """The 11-bit CAN identifier ``(cmd << 2) | dev_id`` of command ``cmd`` to or from
    hand ``dev_id`` (0..3)."""
    if not 0 <= cmd <= MAX_COMMAND:
        raise ValueError(f"command {cmd:#x} out of range 0..{MAX_COMMAND:#x} (9 bits)")
    if not 0 <= dev_id <= MAX_DEVICE_ID:
        raise ValueError(f"device ID {dev_id} out of range 0..{MAX_DEVICE_ID} (2 bits)")
    return (cmd << 2) | dev_id


def split_id(arbitration_id: int) -> tuple[int, int]:
    """``(cmd, dev_id)`` of an 11-bit CAN identifier (the inverse of :func:`arbitration_id`)."""
    if not 0 <= arbitration_id <= 0x7FF:
        raise ValueError(f"identifier {arbitration_id:#x} is not a standard 11-bit CAN identifier")
    return arbitration_id >> 2, arbitration_id & MAX_DEVICE_ID


def command_name(cmd: int) -> str:
    """A readable name of command ``cmd`` (``"torque[2]"``, ``"servo_on"``), or its hex."""
    for base, name in (
        (CMD_TORQUE, "torque"),
        (CMD_POSE, "pose"),
        (RTR_POSITION, "position"),
        (RTR_TEMPERATURE, "temperature"),
    ):
        if base <= cmd < base + NUM_FINGERS:
            return f"{name}[{cmd - base}]"
    return _NAMES.get(cmd, f"{cmd:#04x}")


_NAMES = {
    CMD_SERVO_ON: "servo_on",
    CMD_SERVO_OFF: "servo_off",
    CMD_PERIOD: "period",
    CMD_CONFIG: "config",
    RTR_INFO: "info",
    RTR_SERIAL: "serial",
    RTR_IMU: "imu",
}


# ---------------------------------------------------------------------------------------
# helpers


def _check_finger(finger: int) -> int:
    if not 0 <= finger < NUM_FINGERS:
        raise ValueError(f"finger {finger} out of range 0..{NUM_FINGERS - 1}")
    return int(finger)


def _four(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (JOINTS_PER_FINGER,):
        raise ValueError(f"{what}: expected 4 values (one finger), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: values must be finite, got {arr.tolist()}")
    return arr


def _check_len(data: bytes | bytearray, expected: int, what: str) -> bytes:
    data = bytes(data)
    if len(data) != expected:
        raise ValueError(f"malformed {what} frame: {len(data)} data bytes, expected {expected}")
    return data


# ---------------------------------------------------------------------------------------
# positions


def rad_to_counts(rad: Sequence[float] | np.ndarray) -> np.ndarray:
    """Encoder counts (int64 array) nearest to joint angles ``rad`` (radians); raises
    ValueError if one is not finite or does not fit an int16 (beyond about ±2.9 rad)."""
    arr = np.asarray(rad, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"joint angles must be finite, got {arr.tolist()}")
    counts = np.rint(arr / RAD_PER_COUNT).astype(np.int64)
    if np.any(counts < -32768) or np.any(counts > 32767):
        raise ValueError(
            f"joint angles {arr.tolist()} rad exceed the int16 count range "
            f"(±{32767 * RAD_PER_COUNT:.3f} rad)"
        )
    return counts


def encode_positions(rad4: Sequence[float] | np.ndarray) -> bytes:
    """The 8-byte data of a position frame (0x20 + f): finger f's four joint angles
    ``rad4`` (radians) as int16 LE counts, rounded to the nearest count."""
    return _INT16.pack(*rad_to_counts(_four(rad4, "positions")).tolist())


def decode_positions(data: bytes | bytearray) -> np.ndarray:
    """(4,) joint angles in radians from a position frame's 8 data bytes."""
    counts = _INT16.unpack(_check_len(data, POSITION_LEN, "position"))
    return np.asarray(counts, dtype=float) * RAD_PER_COUNT


# ---------------------------------------------------------------------------------------
# torques


def torques_to_pwm(tau4: Sequence[float] | np.ndarray, finger: int) -> np.ndarray:
    """(4,) int PWM values for finger ``finger``'s joint torques ``tau4`` (N·m): ``τ·1200``
    clamped to :data:`PWM_LIMITS` and truncated toward zero, as the driver's ``(short)``
    cast does."""
    finger = _check_finger(finger)
    pwm = np.clip(_four(tau4, "torques") * TORQUE_TO_PWM, -PWM_LIMITS[finger], PWM_LIMITS[finger])
    return np.trunc(pwm).astype(np.int64)


def encode_torques(tau4: Sequence[float] | np.ndarray, finger: int) -> bytes:
    """The 8-byte data of a torque frame (0x60 + finger): finger ``finger``'s four joint
    torques ``tau4`` (N·m) as int16 LE PWM values, clamped per joint (:func:`torques_to_pwm`)."""
    return _INT16.pack(*torques_to_pwm(tau4, finger).tolist())


def encode_pwm(pwm4: Sequence[int] | np.ndarray) -> bytes:
    """The 8-byte data of a torque frame from four raw int16 PWM values (no clamping:
    for tests that send what a faulty host might)."""
    values = [int(v) for v in pwm4]
    if len(values) != JOINTS_PER_FINGER:
        raise ValueError(f"PWM: expected 4 values (one finger), got {len(values)}")
    if any(not -32768 <= v <= 32767 for v in values):
        raise ValueError(f"PWM values {values} do not fit int16")
    return _INT16.pack(*values)


def decode_pwm(data: bytes | bytearray) -> np.ndarray:
    """(4,) int PWM values from a torque frame's 8 data bytes."""
    return np.asarray(_INT16.unpack(_check_len(data, TORQUE_LEN, "torque")), dtype=np.int64)


def decode_torques(data: bytes | bytearray) -> np.ndarray:
    """(4,) joint torques in N·m (PWM / 1200) from a torque frame's 8 data bytes."""
    return decode_pwm(data) / TORQUE_TO_PWM


# ---------------------------------------------------------------------------------------
# period


def encode_period(position_ms: int, imu_ms: int = 0, temperature_ms: int = 0) -> bytes:
    """The 6-byte data of a period frame (0x81): the position, IMU and temperature stream
    periods in ms, int16 LE each; 0 turns a stream off (all 0: the driver's shutdown)."""
    periods = (position_ms, imu_ms, temperature_ms)
    for name, p in zip(("position", "IMU", "temperature"), periods, strict=True):
        if int(p) != p or not 0 <= p <= 32767:
            raise ValueError(f"{name} period {p!r} ms must be an integer in 0..32767")
    return _PERIOD.pack(*(int(p) for p in periods))


def decode_period(data: bytes | bytearray) -> tuple[int, int, int]:
    """``(position_ms, imu_ms, temperature_ms)`` from a period frame's 6 data bytes;
    raises ValueError on a negative period."""
    periods = _PERIOD.unpack(_check_len(data, PERIOD_LEN, "period"))
    if min(periods) < 0:
        raise ValueError(f"malformed period frame: negative period in {periods} ms")
    return periods


# ---------------------------------------------------------------------------------------
# info, serial, temperature, IMU


@dataclass(frozen=True)
class HandInfo:
    """The reply to an info request (0x80).

    Attributes:
        hardware_version: uint16; the high byte is the hand version (4 on a v4).
        firmware_version: uint16.
        left: True for a left hand (hand type 1), False for a right hand.
        temperature_c: the hand's temperature, whole °C (0..255).
        status: bits :data:`STATUS_SERVO_ON`, :data:`STATUS_HIGH_TEMPERATURE`,
            :data:`STATUS_COMM_FAULT`.
    """

    hardware_version: int
    firmware_version: int
    left: bool
    temperature_c: int
    status: int

    @property
    def hand_version(self) -> int:
        """The hand's major version (4 on a v4): the driver picks the PWM scale by it."""
        return self.hardware_version >> 8

    @property
    def servo_on(self) -> bool:
        """Whether the status says the servo is on."""
        return bool(self.status & STATUS_SERVO_ON)


def encode_info(info: HandInfo) -> bytes:
    """The 8-byte data of an info reply (0x80)."""
    for name, value, top in (
        ("hardware_version", info.hardware_version, 0xFFFF),
        ("firmware_version", info.firmware_version, 0xFFFF),
        ("temperature_c", info.temperature_c, 0xFF),
        ("status", info.status, 0xFF),
    ):
        if not 0 <= value <= top:
            raise ValueError(f"info {name} {value} out of range 0..{top}")
    return _INFO.pack(
        info.hardware_version,
        info.firmware_version,
        1 if info.left else 0,
        info.temperature_c,
        info.status,
        0,
    )


def decode_info(data: bytes | bytearray) -> HandInfo:
    """The :class:`HandInfo` in an info reply's 8 data bytes."""
    hw, fw, kind, temp, status, _ = _INFO.unpack(_check_len(data, INFO_LEN, "info"))
    if kind not in (0, 1):
        raise ValueError(f"malformed info frame: hand type {kind}, expected 0 (right) or 1")
    return HandInfo(hw, fw, kind == 1, temp, status)


def encode_serial(serial: str) -> bytes:
    """The 8-byte data of a serial reply (0x88): ``serial``, ASCII, at most 8 characters,
    padded with spaces."""
    raw = serial.encode("ascii")  # raises UnicodeEncodeError (a ValueError) if not ASCII
    if len(raw) > SERIAL_LEN:
        raise ValueError(f"serial {serial!r} is longer than {SERIAL_LEN} characters")
    return raw.ljust(SERIAL_LEN, b" ")


def decode_serial(data: bytes | bytearray) -> str:
    """The serial number in a serial reply's 8 data bytes (trailing spaces and NULs
    removed)."""
    raw = _check_len(data, SERIAL_LEN, "serial")
    try:
        return raw.decode("ascii").rstrip(" \x00")
    except UnicodeDecodeError as exc:
        raise ValueError(f"malformed serial frame: not ASCII: {raw!r}") from exc


def encode_temperature(celsius: float) -> bytes:
    """The 4-byte data of a temperature reply (0x38 + f): whole °C, int32 LE (rounded)."""
    if not math.isfinite(celsius):
        raise ValueError(f"temperature must be finite, got {celsius}")
    return _TEMPERATURE.pack(round(celsius))


def decode_temperature(data: bytes | bytearray) -> int:
    """The temperature in whole °C from a temperature reply's 4 data bytes."""
    return _TEMPERATURE.unpack(_check_len(data, TEMPERATURE_LEN, "temperature"))[0]
