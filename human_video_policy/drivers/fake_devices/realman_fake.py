"""A RealMan arm controller on 127.0.0.1: JSON lines over TCP, answered like the real one.

Implements the commands the driver uses (``get_current_arm_state``, ``set_arm_power``,
``movej_canfd``), the connect handshake and the planned ``movej`` of Realman's own SDK (an
acknowledgement ``receive_state``, then, ``motion_s`` later, a pushed
``current_trajectory_state`` line when the motion ends), keeps the joint angles in 0.001
degree, halts a planned move on ``set_arm_stop`` / ``set_arm_slow_stop`` (its end pushed as
failed), and injects faults: drop the connection, a malformed (non-JSON) reply, no reply, and
a system error code (reported in
``current_arm_state.err``; with an error the arm refuses power-on and ignores targets). Unknown
commands get ``{"command": ..., "receive_state": false}``. Sources: docs/hardware_protocols.md.

Hostile behaviour for fault-injection tests: ``reply_hook`` replaces the answer to any request
with bytes of the test's choosing (NaN angles, 400-digit numbers, JSON nested 60,000 deep...);
``push_flood`` makes the controller push state lines without pause once a ``movej_canfd`` has
arrived (a real controller pushes trajectory states; a broken one may never stop);
``reset_connection()`` resets the current connection (RST) and accepts the next one.

    python -m human_video_policy.drivers.fake_devices.realman_fake --port 8080
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from human_video_policy.drivers.fake_devices import FaultMode


class FakeRealmanController:
    """Serves one client at a time on ``host:port`` (port 0 picks a free one, see ``.port``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, dof: int = 7) -> None:
        self.joint_mdeg = [0] * dof  # joint angles, 0.001 degree
        self.powered = False
        self.error_code = 0
        self.fault = FaultMode.NONE
        self.received: list[bytes] = []  # every request line as it arrived (terminator kept)
        self.reply_hook: Callable[[dict[str, Any]], bytes | None] | None = None
        self.push_flood = False
        self.motion_s = 0.05  # how long a planned movej takes before its completion is pushed
        self._movej_seen = False
        self._motion: threading.Timer | None = None  # the planned movej under way
        self.moves_halted = 0  # planned moves a stop or slow stop ended early
        self.pushed_bytes = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server((host, port))
        self._server.settimeout(0.05)
        self.host, self.port = self._server.getsockname()[:2]
        self._client: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, name="FakeRealman", daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeRealmanController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._server.close()

    def push(self, message: dict[str, Any]) -> None:
        """Send one unsolicited line to the connected client (as a controller pushes states)."""
        with self._lock:
            client = self._client
        if client is None:
            raise RuntimeError("no client is connected")
        with self._send_lock:
            client.sendall(self._line(message))

    def movej_canfd_count(self) -> int:
        with self._lock:
            return sum(b'"movej_canfd"' in line for line in self.received)

    # --- serving --------------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            with client:
                client.settimeout(0.05)
                with self._lock:
                    self._client = client
                    self.connections += 1
                pusher = threading.Thread(target=self._push, args=(client,), daemon=True)
                pusher.start()
                self._serve_client(client)
                with self._lock:
                    self._client = None
            pusher.join(timeout=1.0)

    def reset_connection(self) -> None:
        """Reset the current connection (TCP RST, as a rebooting controller does)."""
        with self._lock:
            client = self._client
        if client is not None:
            try:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # Joint limits as the controller reports them (0.001 deg, deg/s, deg/s^2 x 1000): the
    # RM75's (Realman RM75 user manual: +-178, +-130, +-178, +-135, +-178, +-128, +-360 deg).
    _LIMITS: ClassVar[dict[str, tuple[str, list[int]]]] = {
        "get_joint_min_pos": (
            "min_pos",
            [-178000, -130000, -178000, -135000, -178000, -128000, -360000],
        ),
        "get_joint_max_pos": (
            "max_pos",
            [178000, 130000, 178000, 135000, 178000, 128000, 360000],
        ),
        "get_joint_max_speed": ("joint_speed", [180000] * 4 + [225000] * 3),
        "get_joint_max_acc": ("joint_acc", [600000] * 7),
    }

    # RM75 link lengths as DH rows (alpha, a, d, offset); d from the arm's model (0.2405, 0.256,
    # 0.21, 0.144 m), alternating +-90 deg twists.
    _DH: ClassVar[list[list[int]]] = [
        [0, 0, 240500, 0],
        [-90000, 0, 0, 0],
        [90000, 0, 256000, 0],
        [-90000, 0, 0, 0],
        [90000, 0, 210000, 0],
        [-90000, 0, 0, 0],
        [90000, 0, 144000, 0],
    ]

    _FLOOD = (
        json.dumps({"state": "current_trajectory_state", "trajectory_state": True}).encode()
        + b"\r\n"
    ) * 512

    def _push(self, client: socket.socket) -> None:
        """While ``push_flood`` is set and a movej_canfd came: push state lines, no pause."""
        while not self._stop.is_set():
            with self._lock:
                active = self._client is client
                flood = self.push_flood and self._movej_seen
            if not active:
                return
            if not flood:
                self._stop.wait(0.005)
                continue
            with self._send_lock:  # whole lines only: replies go between blocks
                block = memoryview(self._FLOOD)
                while block and not self._stop.is_set():
                    try:
                        sent = client.send(block)
                    except (TimeoutError, BlockingIOError):
                        continue
                    except OSError:
                        return
                    block = block[sent:]
                    with self._lock:
                        self.pushed_bytes += sent

    def _serve_client(self, client: socket.socket) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                with self._lock:
                    self.received.append(line + b"\n")
                    if self.fault is FaultMode.DROP:
                        return  # closes the connection
                    reply = self._answer(line.strip())
                if reply:
                    try:
                        with self._send_lock:
                            client.sendall(reply)
                    except OSError:
                        return

    def _answer(self, line: bytes) -> bytes:
        if self.fault is FaultMode.SILENT:
            return b""
        if self.fault is FaultMode.MALFORMED:
            return b'{"state":"current_arm_state","arm_state":{"joint":[1,2,\r\n'
        try:
            request = json.loads(line)
            command = request["command"]
        except (ValueError, KeyError, TypeError):
            return self._line({"command": "unknown", "receive_state": False})
        if self.reply_hook is not None:
            hostile = self.reply_hook(request)
            if hostile is not None:
                return hostile
        if command == "get_arm_software_info":  # JSON protocol, "Version information"
            return self._line(
                {
                    "Product_version": "RM75-B",
                    "algorithm_info": {"version": "1.4.4"},
                    "command": "arm_software_info",
                    "ctrl_info": {"build_time": "2024/08/28 18:36:18", "version": "V1.6.1"},
                    "dynamic_info": {"model_version": "2"},
                    "plan_info": {"build_time": "2024/08/28 18:36:33", "version": "V1.6.1"},
                }
            )
        if command == "get_arm_current_trajectory":  # no planned motion (canfd is not planned)
            return self._line(
                {"state": "arm_current_trajectory", "type": "none", "data": list(self.joint_mdeg)}
            )
        if command == "get_realtime_push":  # UDP push configuration (not sent by this fake)
            return self._line(
                {
                    "command": "get_realtime_push",
                    "custom": {"expand_state": False, "joint_speed": False, "lift_state": False},
                    "cycle": 5,
                    "enable": False,
                    "ip": "127.0.0.1",
                    "port": 8089,
                }
            )
        if command == "get_current_work_frame":
            return self._line(
                {"state": "current_work_frame", "frame_name": "World", "pose": [0] * 6}
            )
        if command == "get_current_tool_frame":
            return self._line(
                {
                    "state": "current_tool_frame",
                    "tool_name": "Arm_Tip",
                    "pose": [0] * 6,
                    "payload": 0,
                    "position": [0, 0, 0],
                }
            )
        if command == "get_DH_data":  # alpha, offset in 0.001 deg; a, d in micrometres
            dh = {f"joint_{i + 1}": row for i, row in enumerate(self._DH[: len(self.joint_mdeg)])}
            return self._line({"command": "get_DH_data", **dh})
        if command == "get_install_pose":
            return self._line({"pose": [0, 0, 0], "state": "install_pose"})
        if command in self._LIMITS:
            key, values = self._LIMITS[command]
            return self._line({key: values[: len(self.joint_mdeg)], "state": command[4:]})
        if command in ("set_arm_stop", "set_arm_slow_stop"):
            # Both halt a planned move (JSON protocol, "Motion stop": slow stop stops on the
            # trajectory, quick stop at once): the joints stay where the move left them (this
            # fake moves in one step at the end, so where it started), and the end of the move
            # is pushed as failed, which is what a blocked rm_movej waits for.
            key = "arm_stop" if command == "set_arm_stop" else "arm_slow_stop"
            reply = self._line({"command": command, key: True})
            if self._motion is not None:
                self._motion.cancel()
                self._motion = None
                self.moves_halted += 1
                reply += self._line(self._trajectory_end(False))
            return reply
        if command == "get_current_arm_state":
            return self._line(
                {
                    "state": "current_arm_state",
                    "arm_state": {
                        "joint": list(self.joint_mdeg),
                        "pose": [0, 0, 0, 0, 0, 0],
                        # a list of codes, [0] without error, as current controllers answer
                        # (and the vendor SDK requires)
                        "err": [self.error_code],
                    },
                }
            )
        if command == "set_arm_power":
            on = request.get("arm_power") == 1
            if on and self.error_code:
                return self._line({"command": "set_arm_power", "arm_power": False})
            self.powered = on
            return self._line({"command": "set_arm_power", "arm_power": True})
        if command == "movej":  # planned: acknowledged now, completion pushed when it ends
            return self._planned_move(request)
        if command == "movej_canfd":
            self._movej_seen = True
            joints = request.get("joint")
            valid = isinstance(joints, list) and len(joints) == len(self.joint_mdeg)
            if valid and self.powered and not self.error_code:
                self.joint_mdeg = [int(v) for v in joints]
            return b""  # pass-through commands are not answered
        return self._line({"command": command, "receive_state": False})

    def _planned_move(self, request: dict[str, Any]) -> bytes:
        """``movej``: refused (``receive_state: false``) without power, with an error, or with a
        target outside the joint limits; else acknowledged and completed ``motion_s`` later."""
        joints = request.get("joint")
        low = self._LIMITS["get_joint_min_pos"][1]
        high = self._LIMITS["get_joint_max_pos"][1]
        valid = (
            isinstance(joints, list)
            and len(joints) == len(self.joint_mdeg)
            and all(
                isinstance(v, int) and lo <= v <= hi
                for v, lo, hi in zip(joints, low, high, strict=False)
            )
        )
        if not (valid and self.powered and not self.error_code):
            return self._line({"command": "movej", "receive_state": False})
        client = self._client
        target = [int(v) for v in joints]

        def complete() -> None:
            with self._lock:
                if self._client is not client or client is None or self._motion is not timer:
                    return  # the client left, or a stop halted this move
                self._motion = None
                ok = self.powered and not self.error_code
                if ok:
                    self.joint_mdeg = target
            try:
                with self._send_lock:
                    client.sendall(self._line(self._trajectory_end(ok)))
            except OSError:
                pass

        if self._motion is not None:
            self._motion.cancel()  # a new planned move replaces the running one
        timer = threading.Timer(self.motion_s, complete)
        timer.daemon = True
        self._motion = timer
        timer.start()
        return self._line({"command": "movej", "receive_state": True})

    @staticmethod
    def _trajectory_end(ok: bool) -> dict[str, Any]:
        """The line pushed when a planned move ends: reached (true) or not (false)."""
        return {
            "state": "current_trajectory_state",
            "trajectory_state": ok,
            "device": 0,
            "trajectory_connect": 0,
        }

    @staticmethod
    def _line(message: dict[str, Any]) -> bytes:
        return json.dumps(message).encode() + b"\r\n"


def main(argv: list[str] | None = None) -> None:
    """Serve a fake controller until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--dof", type=int, default=7)
    args = parser.parse_args(argv)
    with FakeRealmanController(args.host, args.port, args.dof) as fake:
        print(f"fake RealMan controller ({args.dof} joints) on {fake.host}:{fake.port}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
