"""The ``glove`` device: receives glove packets over UDP and publishes them as frames.

Its behaviour (validation, sequence checks, rejection reasons) is specified in
:mod:`devices.inputs.glove.protocol`, section "Receiver behaviour".
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from devices.inputs.base import DEVICES, Device
from devices.inputs.glove.codec import decode_packet
from devices.inputs.glove.protocol import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    HANDS,
    SEQ_RESTART_GAP,
    GlovePacketError,
)

log = logging.getLogger("devices.inputs.glove")  # one logger for the package

#: After this long without an accepted packet from a sender, its sequence starts afresh, s.
SENDER_IDLE_RESET_S: float = 2.0
#: At most this many senders are tracked; the one heard from least recently is forgotten.
MAX_SENDERS: Final[int] = 64
#: Receive timeout of the receiver thread, s: how long :meth:`GloveDevice.disconnect` waits.
RECV_TIMEOUT_S: Final[float] = 0.05

#: Reasons the receiver adds to :data:`PACKET_REASONS` (``internal_error``: a bug, logged).
DEVICE_REASONS: Final[tuple[str, ...]] = (
    "wrong_hand",
    "duplicate",
    "out_of_order",
    "internal_error",
)


@dataclass
class GloveConfig:
    """Settings of the glove receiver.

    Attributes:
        host: local address to listen on (``0.0.0.0``: every interface).
        port: UDP port; 0 picks a free one (read it back with :attr:`GloveDevice.port`).
        hand: the hand to accept, ``"right"`` or ``"left"``; packets of the other are
            rejected as ``wrong_hand``.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    hand: str = "right"


@dataclass(frozen=True)
class GloveStats:
    """Counters of the glove receiver since connecting.

    Attributes:
        received: datagrams received (valid or not).
        accepted: packets published as frames.
        lost: packets never received, from gaps in the senders' ``seq``.
        senders: senders currently tracked (distinct source addresses).
        restarts: times a sender's sequence started afresh (restart or idle).
    """

    received: int = 0
    accepted: int = 0
    lost: int = 0
    senders: int = 0
    restarts: int = 0


@dataclass
class _Sender:
    """Sequence state of one sender: the last seq in sequence and when it came (monotonic, s)."""

    last_seq: int
    last_accept: float


@DEVICES.register("glove")
class GloveDevice(Device):
    """Receives glove packets over UDP (:mod:`devices.inputs.glove.protocol`) and publishes them.

    A thread owns the socket; each datagram is decoded, validated and checked against its
    sender's sequence; good packets become :class:`HumanFrame` s stamped with
    ``self.clock.now()`` on arrival, with ``seq`` the packet's.
    """

    Config = GloveConfig

    def __init__(self, config: GloveConfig) -> None:
        """Check the settings (nothing is opened before :meth:`connect`).

        Raises:
            ValueError: on an unknown hand or a port outside 0..65535.
        """
        super().__init__()
        if config.hand not in HANDS:
            raise ValueError(f"glove hand must be 'right' or 'left', got {config.hand!r}")
        port = config.port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"glove port must be an integer in 0..65535, got {port!r}")
        self.config = config
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._port: int | None = None
        self._stats_lock = threading.Lock()
        self._received = 0
        self._accepted = 0
        self._lost = 0
        self._restarts = 0
        self._senders: dict[tuple[Any, ...], _Sender] = {}
        self._last_warning: dict[str, float] = {}

    @classmethod
    def availability(cls) -> str | None:
        """Always None: UDP needs no driver or SDK."""
        return None

    @classmethod
    def shorthand_settings(cls, arg: str) -> dict[str, str]:
        """``glove:HOST:PORT``, ``glove:PORT`` (on :data:`DEFAULT_HOST`) or ``glove:HOST``."""
        host, _, port = arg.rpartition(":")
        if port.isdigit():
            return {"host": host or DEFAULT_HOST, "port": port}
        return {"host": arg}

    @property
    def port(self) -> int | None:
        """The UDP port actually bound (useful with ``port=0``), None when not connected."""
        return self._port

    @property
    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` bound, None when not connected."""
        return None if self._port is None else (self.config.host, self._port)

    def stats(self) -> GloveStats:
        """Receiver counters since connecting (thread-safe)."""
        with self._stats_lock:
            return GloveStats(
                received=self._received,
                accepted=self._accepted,
                lost=self._lost,
                senders=len(self._senders),
                restarts=self._restarts,
            )

    def report_extra(self) -> dict[str, object]:
        """Packets received / accepted / lost (sequence gaps) for the run report."""
        return {"packets": dataclasses.asdict(self.stats())}

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        """Bind the UDP socket and start the receiver thread.

        Raises:
            OSError: if the address cannot be bound (e.g. the port is already in use).
        """
        if self._thread is not None:
            return
        host, port = self.config.host, self.config.port
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                msg = (
                    f"glove: UDP port {port} on {host} is already in use (another glove "
                    "receiver running?); choose another port"
                )
            else:
                msg = f"glove: cannot listen on udp://{host}:{port}: {err.strerror or err}"
            raise OSError(err.errno, msg) from err
        sock.settimeout(RECV_TIMEOUT_S)
        self._sock = sock
        self._port = int(sock.getsockname()[1])
        with self._stats_lock:
            self._received = self._accepted = self._lost = self._restarts = 0
            self._senders.clear()
        self._stop_evt.clear()
        self._thread = threading.Thread(target=self._run, name="glove-udp", daemon=True)
        self._thread.start()
        log.info(
            "glove: listening for %s-hand packets on udp://%s:%d",
            self.config.hand,
            host,
            self._port,
        )

    def _stop(self) -> None:
        """Stop the thread (within about :data:`RECV_TIMEOUT_S`) and close the socket."""
        self._stop_evt.set()
        self._join_thread(self._thread, 1.0)
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._port = None

    # ------------------------------------------------------------------ receiving
    def _run(self) -> None:
        """Receiver loop: never dies on bad input, only when asked to stop."""
        sock = self._sock
        assert sock is not None
        while not self._stop_evt.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError as err:
                if self._stop_evt.is_set():
                    break
                log.warning("glove: receive error: %s", err)
                self._set_message(f"glove: receive error: {err}")
                self._stop_evt.wait(0.01)
                continue
            try:
                self._handle(data, addr)
            except Exception:  # the receiver must survive any bug: log, count, go on
                log.exception("glove: error handling a packet from %s", _fmt_addr(addr))
                self._drop("internal_error", "internal error handling a packet", addr)

    def _handle(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Validate one datagram from ``addr`` and publish it or count why not."""
        now = self.clock.now()
        arrival = time.monotonic()
        with self._stats_lock:
            self._received += 1
        try:
            packet = decode_packet(data)
        except GlovePacketError as err:
            self._drop(err.reason, str(err), addr)
            return
        # The sequence spans both hands of a sender, so check it before the hand.
        verdict = self._sequence(packet.seq, addr, arrival)
        if verdict is not None:
            self._drop(verdict, f"seq {packet.seq}", addr)
            return
        if packet.hand != self.config.hand:
            self._drop(
                "wrong_hand", f"{packet.hand}-hand packet, expecting {self.config.hand}", addr
            )
            return
        frame = packet.to_frame(now)
        with self._stats_lock:
            self._accepted += 1
        self._publish(frame)

    def _sequence(self, seq: int, addr: tuple[Any, ...], arrival: float) -> str | None:
        """Check ``seq`` against ``addr``'s sequence: None (in sequence) or the reject reason.

        ``arrival`` is the receiver's monotonic time, seconds. Updates the sender's state and
        the lost / restart counters.
        """
        with self._stats_lock:
            sender = self._senders.get(addr)
            if sender is None:
                if len(self._senders) >= MAX_SENDERS:
                    oldest = min(self._senders, key=lambda a: self._senders[a].last_accept)
                    del self._senders[oldest]
                self._senders[addr] = _Sender(seq, arrival)
                log.info("glove: new sender %s (seq %d)", _fmt_addr(addr), seq)
                return None
            last = sender.last_seq
            idle = arrival - sender.last_accept > SENDER_IDLE_RESET_S
            if seq <= last:
                if not idle and seq == last:
                    return "duplicate"
                if not idle and last - seq <= SEQ_RESTART_GAP:
                    return "out_of_order"
                self._restarts += 1
                log.info(
                    "glove: sender %s restarted its sequence (%d after %d%s)",
                    _fmt_addr(addr),
                    seq,
                    last,
                    ", idle" if idle else "",
                )
            elif seq > last + 1:
                self._lost += seq - last - 1
            sender.last_seq, sender.last_accept = seq, arrival
            return None

    def _drop(self, reason: str, detail: str, addr: tuple[Any, ...]) -> None:
        """Count a rejected datagram; log a warning at most every 5 s per reason."""
        message = f"glove: dropped packet from {_fmt_addr(addr)}: {reason}: {detail}"
        self._reject(reason, message)
        now = time.monotonic()
        if now - self._last_warning.get(reason, -math.inf) >= 5.0:
            self._last_warning[reason] = now
            log.warning("%s (further '%s' drops logged at debug level for 5 s)", message, reason)
        else:
            log.debug("%s", message)


def _fmt_addr(addr: tuple[Any, ...]) -> str:
    """``host:port`` of a socket address."""
    return f"{addr[0]}:{addr[1]}" if len(addr) >= 2 else str(addr)
