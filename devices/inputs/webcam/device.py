"""The ``webcam`` device: hand tracking from a webcam (or a video file) with MediaPipe.

Pipeline
--------
A thread reads images from the camera (or plays a video file, looping, at the file's frame
rate), runs the landmarker in VIDEO mode (strictly increasing millisecond timestamps) and,
for the hand the device is set to follow, turns MediaPipe's *world landmarks* (21 x 3, metres,
origin near the hand's centre, axes of the camera image) into a :class:`HumanFrame`
(:func:`landmarks_to_frame_arrays`):

- ``keypoints`` (21, 3): the world landmarks in the wrist frame of :mod:`devices.tick`
  (origin keypoint 0, axes from :func:`~devices.tick.wrist_frame_from_points`); a left
  hand is mirrored first (x -> -x, :func:`mirror_hand`), so it has the shape of a right hand,
  as for the glove protocol;
- ``wrist`` (4, 4): a **coarse** pose of the wrist in the world frame below. Its rotation is
  the wrist frame of the world landmarks (a learned monocular estimate, noisy from frame to
  frame); its position comes from the wrist's normalized image coordinates and a depth
  guessed from the hand's apparent size under a weak-perspective model with a nominal field
  of view (:attr:`WebcamConfig.hfov_deg`), with no camera calibration: expect centimetres of
  error across the image and tens of percent in depth. Use it for relative motion, not
  absolute placement;
- ``confidence``: MediaPipe's handedness score of that hand; ``t``: ``clock.now()`` just after
  the image was read; ``seq``: the number of the camera image (gaps: images without a frame).

Device behaviour
----------------
Images without a usable hand publish nothing and are counted by reason
(``DeviceStatus.rejected``): ``no_hand`` (nothing detected), ``wrong_hand`` (only the other
hand), ``low_confidence`` (the hand's handedness score is below ``min_confidence``),
``bad_landmarks`` (degenerate or non-finite landmarks), ``camera_error`` (the camera or file
could not be opened or read: the capture is released and reopened after a back-off from
:attr:`WebcamDevice.RETRY_MIN_S`, doubling up to :attr:`WebcamDevice.RETRY_MAX_S`),
``detector_error`` (the landmarker raised). When the hand is lost, the latest frame is marked
with confidence 0.0, so the session holds at once. The thread survives every error.
``connect`` itself raises :class:`WebcamError` if the landmarker cannot be built (packages or
model missing) or the camera / file cannot be opened at all.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np

from devices.inputs.base import DEVICES, Device
from devices.inputs.webcam import packages
from devices.inputs.webcam.backends import (
    Capture,
    HandDetection,
    Landmarker,
    MediaPipeLandmarker,
    OpenCVCapture,
    to_rgb,
)
from devices.inputs.webcam.config import WebcamConfig, WebcamStats
from devices.inputs.webcam.geometry import (
    landmarks_to_frame_arrays,
    normalize_hand,
    operator_hand,
    other_hand,
)
from devices.inputs.webcam.packages import INSTALL_HINT, MODEL_HINT, WebcamError
from devices.tick import HumanFrame

log = logging.getLogger("devices.inputs.webcam")

#: Reasons that only say where the hand is (logged at INFO, the others at WARNING).
_HAND_REASONS: Final[frozenset[str]] = frozenset({"no_hand", "wrong_hand", "low_confidence"})


@DEVICES.register("webcam")
class WebcamDevice(Device):
    """Hand tracking from a webcam (or a video file) with MediaPipe's HandLandmarker.

    See the module docstring for frames and rejection reasons, and
    :mod:`devices.inputs.webcam.geometry` for axes and handedness.

    Args:
        config: the settings.
        open_capture: builds the image source (called on connect and to reopen after a
            camera error); None opens :class:`OpenCVCapture` on ``config.video`` or
            ``config.camera``.
        make_landmarker: builds the landmarker on connect; None loads
            :class:`MediaPipeLandmarker` with ``config.model`` or :func:`find_model`.

    Raises:
        ValueError: on invalid settings. FileNotFoundError: ``video`` or ``model`` is not
            a file.
    """

    Config = WebcamConfig

    #: First back-off after a camera error, seconds (doubles per error in a row).
    RETRY_MIN_S: float = 0.1
    #: Longest back-off after camera errors, seconds.
    RETRY_MAX_S: float = 2.0
    #: Seconds to wait for the thread on disconnect.
    JOIN_TIMEOUT_S: float = 2.0
    #: Seconds between two log lines about the same problem.
    LOG_EVERY_S: float = 5.0

    def __init__(
        self,
        config: WebcamConfig,
        open_capture: Callable[[], Capture] | None = None,
        make_landmarker: Callable[[], Landmarker] | None = None,
    ) -> None:
        super().__init__()
        hand = normalize_hand(config.hand)
        if not (math.isfinite(config.min_confidence) and 0.0 <= config.min_confidence <= 1.0):
            raise ValueError(
                f"webcam min_confidence must be in [0, 1], got {config.min_confidence}"
            )
        if config.camera < 0:
            raise ValueError(f"webcam camera index must be >= 0, got {config.camera}")
        if config.width < 0 or config.height < 0:
            raise ValueError(
                f"webcam width/height must be >= 0, got {config.width}x{config.height}"
            )
        if not (math.isfinite(config.fps) and config.fps > 0):
            raise ValueError(f"webcam fps must be positive, got {config.fps}")
        if not 0.0 < config.hfov_deg < 180.0:
            raise ValueError(f"webcam hfov_deg must be in (0, 180), got {config.hfov_deg}")
        if config.video is not None and not Path(config.video).expanduser().is_file():
            raise FileNotFoundError(f"webcam: no video file {config.video}")
        if config.model is not None and packages.find_model(config.model) is None:
            raise FileNotFoundError(f"webcam: no model file {config.model}")
        self.config = dataclasses.replace(config, hand=hand)
        self._open_capture = open_capture or self._open_opencv
        self._make_landmarker = make_landmarker or self._load_mediapipe
        self._capture: Capture | None = None
        self._landmarker: Landmarker | None = None
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._state = "starting"
        self._backoff = 0.0
        self._next_due = 0.0
        self._images_since_open = 0
        self._last_ms = -1
        self._last_log: dict[str, float] = {}
        self._stats_lock = threading.Lock()
        self._images = 0
        self._opens = 0
        self._loops = 0
        self._detect_s = 0.0
        self._detections = 0

    # ---- public helpers ---------------------------------------------------------------------

    @classmethod
    def availability(cls) -> str | None:
        """None if mediapipe and OpenCV import and a model is found, else why not (one line).

        It checks for a model shipped in an installed package only (a ``model=PATH`` given in
        the settings is checked when the device is built).
        """
        for name in ("mediapipe", "cv2"):
            try:
                packages.import_optional(name)
            except WebcamError:
                return f"{name} is not installed: {INSTALL_HINT}"
        if packages.find_model() is None:
            return MODEL_HINT
        return None

    def stats(self) -> WebcamStats:
        """Counters since connecting (thread-safe)."""
        with self._stats_lock:
            mean_ms = 1e3 * self._detect_s / self._detections if self._detections else 0.0
            return WebcamStats(
                images=self._images, opens=self._opens, loops=self._loops, detect_ms=mean_ms
            )

    def report_extra(self) -> dict[str, object]:
        """Images read, capture (re)openings, video loops and mean detection time."""
        return {"webcam": dataclasses.asdict(self.stats())}

    # ---- default factories ------------------------------------------------------------------

    def _open_opencv(self) -> Capture:
        """Open the configured video file or camera with OpenCV."""
        c = self.config
        source: int | str = str(Path(c.video).expanduser()) if c.video is not None else c.camera
        return OpenCVCapture(source, width=c.width, height=c.height, fps=c.fps)

    def _load_mediapipe(self) -> Landmarker:
        """MediaPipe's landmarker with the configured or a bundled model."""
        model = packages.find_model(self.config.model)
        if model is None:
            raise WebcamError(MODEL_HINT)
        log.info("webcam: hand landmarker model %s", model)
        return MediaPipeLandmarker(model, num_hands=2)

    # ---- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        """Build the landmarker, open the camera and start the thread.

        Raises:
            WebcamError: packages or model missing, or the camera / file cannot be opened.
        """
        if self._thread is not None:
            return
        landmarker = self._make_landmarker()
        try:
            capture = self._open_capture()
        except BaseException:
            landmarker.close()
            raise
        with self._stats_lock:
            self._images = self._loops = self._detections = 0
            self._opens = 1
            self._detect_s = 0.0
        self._landmarker, self._capture = landmarker, capture
        self._images_since_open = 0
        self._backoff = 0.0
        self._next_due = time.monotonic()
        self._state = "starting"
        source = (
            f"video {self.config.video}" if self.config.video else f"camera {self.config.camera}"
        )
        log.info("webcam: tracking the %s hand from %s", self.config.hand, source)
        self._stop_evt.clear()
        self._thread = threading.Thread(target=self._run, name="webcam", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        """Stop the thread, release the capture and close the landmarker."""
        self._stop_evt.set()
        thread, self._thread = self._thread, None
        if not self._join_thread(thread, self.JOIN_TIMEOUT_S):
            log.warning("webcam: camera and landmarker left open")
            return
        self._release()
        if self._landmarker is not None:
            self._close_quietly(self._landmarker.close, "the landmarker")
            self._landmarker = None

    def _release(self) -> None:
        """Release the capture, if open (errors are logged)."""
        capture, self._capture = self._capture, None
        if capture is not None:
            try:
                capture.release()
            except Exception as e:  # noqa: BLE001 - a broken capture is dropped anyway
                log.debug("webcam: releasing the capture failed: %s", e)

    # ---- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        """Read, detect, publish until stopped; never raises."""
        while not self._stop_evt.is_set():
            try:
                delay = self._step()
            except Exception as e:  # noqa: BLE001 - the thread must survive anything
                self._problem(
                    "detector_error", f"webcam: unexpected error: {type(e).__name__}: {e}", e
                )
                delay = self.RETRY_MIN_S
            if delay > 0:
                self._stop_evt.wait(delay)

    def _step(self) -> float:
        """Handle one image (or one attempt to get one); returns seconds to wait before the next."""
        if self._capture is None:
            try:
                self._capture = self._open_capture()
            except Exception as e:  # noqa: BLE001 - any failure to open is a camera error
                return self._camera_error(f"webcam: cannot open the camera: {e}")
            self._images_since_open = 0
            self._next_due = time.monotonic()
            with self._stats_lock:
                self._opens += 1
        capture = self._capture
        try:
            image = capture.read()
        except Exception as e:  # a raising read is a failed read
            log.debug("webcam: read raised", exc_info=True)
            image = None
            reason = f"{type(e).__name__}: {e}"
        else:
            reason = "no image"
        if image is None:
            if capture.is_file and self._images_since_open > 0:
                log.debug("webcam: end of the video, playing it again")
                self._release()
                with self._stats_lock:
                    self._loops += 1
                return 0.0
            self._release()
            return self._camera_error(f"webcam: reading the camera failed ({reason})")
        stamp = self.clock.now()
        self._backoff = 0.0
        self._images_since_open += 1
        with self._stats_lock:
            self._images += 1
            seq = self._images
        self._process(image, stamp, seq)
        if capture.frame_interval_s > 0:
            self._next_due = max(self._next_due + capture.frame_interval_s, time.monotonic() - 1.0)
            return max(0.0, self._next_due - time.monotonic())
        return 0.0

    def _camera_error(self, message: str) -> float:
        """Count a camera error; returns the back-off before the next attempt, seconds."""
        self._problem("camera_error", message)
        self._backoff = min(self.RETRY_MAX_S, max(self.RETRY_MIN_S, 2.0 * self._backoff))
        return self._backoff

    def _timestamp_ms(self) -> int:
        """Strictly increasing milliseconds for the landmarker."""
        self._last_ms = max(int(time.monotonic() * 1e3), self._last_ms + 1)
        return self._last_ms

    def _process(self, image: np.ndarray, stamp: float, seq: int) -> None:
        """Detect the hand in one image and publish a frame, or count why not."""
        try:
            rgb = to_rgb(image)
        except ValueError as e:
            self._problem("camera_error", f"webcam: {e}")
            return
        landmarker = self._landmarker
        assert landmarker is not None
        started = time.perf_counter()
        try:
            hands = landmarker.detect(rgb, self._timestamp_ms())
        except Exception as e:  # noqa: BLE001 - counted, logged, the thread goes on
            self._problem("detector_error", f"webcam: hand landmarker failed: {e}", e)
            return
        with self._stats_lock:
            self._detect_s += time.perf_counter() - started
            self._detections += 1
        if not hands:
            self._problem("no_hand", "webcam: no hand in view")
            return
        mirror = self.config.mirrored
        mine: list[tuple[HandDetection, str]] = []
        for det in hands:
            try:
                seen = normalize_hand(det.label)
            except ValueError:
                continue
            if self.config.swap_labels:
                seen = other_hand(seen)
            if operator_hand(seen, mirror) == self.config.hand:
                mine.append((det, seen))
        if not mine:
            self._problem(
                "wrong_hand", f"webcam: only the other hand is in view (not {self.config.hand})"
            )
            return
        det, seen = max(mine, key=lambda m: m[0].score)
        score = float(det.score)
        if not (math.isfinite(score) and score >= self.config.min_confidence):
            limit = self.config.min_confidence
            self._problem(
                "low_confidence", f"webcam: {self.config.hand} hand unsure ({score:.2f} < {limit})"
            )
            return
        height, width = rgb.shape[:2]
        try:
            keypoints, wrist = landmarks_to_frame_arrays(
                det.world,
                det.image,
                seen,
                mirror,
                aspect=width / height,
                hfov_deg=self.config.hfov_deg,
            )
        except ValueError as e:
            self._problem("bad_landmarks", f"webcam: unusable landmarks: {e}")
            return
        if self._state != "ok":
            now = time.monotonic()
            if self._state != "starting" and now - self._last_log.get("ok", -math.inf) >= (
                self.LOG_EVERY_S
            ):
                self._last_log["ok"] = now
                log.info("webcam: tracking the %s hand again", self.config.hand)
            self._state = "ok"
            self._set_message("")
        self._publish(
            HumanFrame(
                keypoints=keypoints,
                wrist=wrist,
                t=stamp,
                seq=seq,
                confidence=min(1.0, max(0.0, score)),
            )
        )

    def _problem(self, reason: str, message: str, error: BaseException | None = None) -> None:
        """Count one rejected image; on a change of state mark the last frame lost.

        The message is logged at most once per :attr:`LOG_EVERY_S` per reason.
        """
        changed = self._state != reason
        self._state = reason
        self._reject(reason, message if changed else "", lost=changed)
        now = time.monotonic()
        if now - self._last_log.get(reason, -math.inf) >= self.LOG_EVERY_S:
            self._last_log[reason] = now
            level = logging.INFO if reason in _HAND_REASONS else logging.WARNING
            log.log(level, "%s", message, exc_info=error)
