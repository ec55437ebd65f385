"""The 3D view: MuJoCo renders the hand, the object and the commanded keypoints (ghosts)
offscreen (EGL on a headless machine) on a thread of its own; the widget paints the latest
image. Drag to orbit, wheel to zoom, double-click to reset the camera.

The renderer owns its own ``MjData`` and restores each tick's simulator state into it, so
it never touches the data the control loop is stepping. A backend without a simulator (a
real hand) is drawn from its measured joints (``HandState.q``) in the hand's own scene.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

import mujoco
import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QWheelEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

from devices.robots.base import Simulated
from devices.robots.scene import site_names
from teleop_app.video import MeasuredScene, add_ghosts, scene_option

if TYPE_CHECKING:
    from teleop_app.runner import SessionRunner

log = logging.getLogger(__name__)

#: Default orbit camera around the palm: the "front" camera of the scene, as a free camera.
#: The camera looks at the middle of the hand: 6 cm from the palm frame towards the fingers.
LOOK_OFFSET_PALM = np.array([0.06, 0.0, 0.0])
DEFAULT_CAMERA = {"distance": 0.46, "azimuth": 112.0, "elevation": -28.0}


class SceneRenderer:
    """Renders the runner's latest scene on the ``scene-render`` thread at up to ``fps``.

    ``image()`` returns the latest RGB frame (H, W, 3) uint8 and its number. Frames are
    rendered only when the tick or the camera changed.
    """

    def __init__(
        self, runner: SessionRunner, *, width: int = 560, height: int = 420, fps: float = 30.0
    ) -> None:
        self.runner = runner
        self.width, self.height = width, height
        self.period_s = 1.0 / fps
        self.camera = dict(DEFAULT_CAMERA)
        self._camera_version = 0
        self._image: np.ndarray | None = None
        self._frames = 0
        self._times: list[float] = []
        self.message = "waiting for the hand"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scene-render", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def image(self) -> tuple[np.ndarray | None, int]:
        with self._lock:
            return self._image, self._frames

    def fps(self) -> float:
        """Frames rendered per second over the last ~2 s."""
        with self._lock:
            ts = list(self._times)
        if len(ts) < 2:
            return 0.0
        return (len(ts) - 1) / (ts[-1] - ts[0]) if ts[-1] > ts[0] else 0.0

    def orbit(self, d_azimuth: float, d_elevation: float) -> None:
        with self._lock:
            self.camera["azimuth"] = (self.camera["azimuth"] + d_azimuth) % 360.0
            el = self.camera["elevation"] + d_elevation
            self.camera["elevation"] = float(np.clip(el, -89.0, 89.0))
            self._camera_version += 1

    def zoom(self, factor: float) -> None:
        with self._lock:
            d = self.camera["distance"] * factor
            self.camera["distance"] = float(np.clip(d, 0.1, 2.0))
            self._camera_version += 1

    def reset_camera(self) -> None:
        with self._lock:
            self.camera = dict(DEFAULT_CAMERA)
            self._camera_version += 1

    def _run(self) -> None:
        renderer: mujoco.Renderer | None = None
        data = robot = opt = cam = measured = None
        palm_site = -1
        drawn: tuple[int, int, int] = (-1, -1, -1)
        failures = 0
        while not self._stop.is_set():
            t0 = time.perf_counter()
            frame = self.runner.scene()
            try:
                # Draw each frame with the model it came from (a reconnect may change hand).
                r = None if frame is None else frame.robot
                if r is not None and r is not robot:
                    robot = r
                    if renderer is not None:
                        renderer.close()
                        renderer = None
                    if isinstance(robot, Simulated):
                        model, measured = robot.model, None
                    else:  # drawn from the measured joints (and the arm's, on an arm)
                        hand = robot.hand  # type: ignore[attr-defined]
                        measured = MeasuredScene(hand, arm=frame.arm)
                        model = measured.model
                    data = mujoco.MjData(model)
                    renderer = mujoco.Renderer(model, self.height, self.width)
                    opt = scene_option(robot)  # type: ignore[arg-type]
                    palm_site = model.site(site_names()[0]).id
                    cam = mujoco.MjvCamera()
                    drawn = (-1, -1, -1)
                    self.message = ""
                missing = frame is None or (measured is None and frame.sim_state is None)
                if renderer is None or missing:
                    self._stop.wait(self.period_s)
                    continue
                assert frame is not None
                with self._lock:
                    camera, version = dict(self.camera), self._camera_version
                key = (frame.tick, version, id(robot))
                if key != drawn:
                    assert data is not None and cam is not None
                    if measured is None:
                        robot.load_state(frame.sim_state, data)  # type: ignore[union-attr]
                    else:
                        measured.load(frame.q, data, frame.arm_q)
                    palm = data.site_xpos[palm_site].copy()
                    palm_rot = data.site_xmat[palm_site].reshape(3, 3)
                    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
                    cam.lookat[:] = palm + palm_rot @ LOOK_OFFSET_PALM
                    cam.distance = camera["distance"]
                    cam.azimuth = camera["azimuth"]
                    cam.elevation = camera["elevation"]
                    renderer.update_scene(data, camera=cam, scene_option=opt)
                    # Shadows cost ~5x the frame in software rendering (53 vs 11 ms here).
                    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
                    add_ghosts(
                        renderer.scene,
                        palm,
                        palm_rot,
                        frame.commanded,
                    )
                    rgb = renderer.render().copy()
                    now = time.perf_counter()
                    with self._lock:
                        self._image = rgb
                        self._frames += 1
                        self._times.append(now)
                        while self._times and self._times[0] < now - 2.0:
                            self._times.pop(0)
                    drawn = key
                    failures = 0
            except Exception as e:  # one bad frame must not end the view
                failures += 1
                if failures == 1:
                    log.exception("3D view: a frame failed")
                self.message = f"3D view: {e}"
                drawn = (-1, -1, -1)
            rest = self.period_s - (time.perf_counter() - t0)
            self._stop.wait(max(rest, 0.001) if failures == 0 else 0.5)
        if renderer is not None:
            renderer.close()


class SceneView(QWidget):
    """Paints the renderer's latest frame, keeping its aspect ratio; mouse moves the camera."""

    def __init__(self, renderer: SceneRenderer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.renderer = renderer
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Drag to orbit, wheel to zoom, double-click to reset the view")
        self._qimage: QImage | None = None
        self._shown = -1
        self._drag: QPointF | None = None
        self.frames_shown = 0

    def refresh(self) -> None:
        """Take the renderer's latest frame if it is new (called by the app's UI timer)."""
        image, n = self.renderer.image()
        if image is None or n == self._shown:
            if image is None:
                self.update()
            return
        h, w, _ = image.shape
        self._qimage = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self._shown = n
        self.frames_shown += 1
        self.update()

    def paintEvent(self, event: object) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 26, 30))
        if self._qimage is None:
            p.setPen(QColor(200, 200, 200))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.renderer.message or "...")
            p.end()
            return
        iw, ih = self._qimage.width(), self._qimage.height()
        s = min(self.width() / iw, self.height() / ih)
        w, h = iw * s, ih * s
        target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
        p.drawImage(target, self._qimage)
        p.setPen(QColor(230, 230, 230))
        p.drawText(8, 18, f"{self.renderer.fps():4.1f} fps   green: commanded keypoints")
        p.end()

    def mousePressEvent(self, e: QMouseEvent) -> None:
        self._drag = e.position()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if self._drag is None:
            return
        d = e.position() - self._drag
        self._drag = e.position()
        self.renderer.orbit(-0.4 * d.x(), -0.4 * d.y())

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        self._drag = None

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:
        self.renderer.reset_camera()

    def wheelEvent(self, e: QWheelEvent) -> None:
        steps = e.angleDelta().y() / 120.0
        self.renderer.zoom(math.pow(0.9, steps))
