"""The two RealMan clients side by side: the project's JSON client and Realman's own SDK.

Each runs the controller's per-tick I/O (read_state + send_positions) at 100 Hz for ``--ticks``
ticks against the fake controller on 127.0.0.1 (one fake per client, same process), and the
script reports the tick I/O time (median, p99, max) and the jitter of the tick start against
the 10 ms schedule, in one run:

    .venv/bin/python benchmarks/realman_clients.py --ticks 1000

Loopback and a Python fake: this measures the clients' own overhead, not a real controller's
latency. A tick that raises a DriverError is counted (and timed); a client that dropped its
connection (the SDK backend does after any -2/-3) is reconnected between ticks, untimed, as
the controller core does in its reconnect thread.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from human_video_policy.drivers.base import DriverError
from human_video_policy.drivers.fake_devices.realman_fake import FakeRealmanController
from human_video_policy.drivers.realman import RealmanArmConfig, RealmanDriver


def run(backend: str, ticks: int, period_s: float = 0.01) -> dict[str, Any]:
    with FakeRealmanController() as fake:
        driver = RealmanDriver(RealmanArmConfig(host="127.0.0.1", port=fake.port, backend=backend))
        driver.connect()
        driver.enable()
        q = driver.read_state().positions
        io_ms, late_ms = [], []
        errors = reconnects = 0
        kinds: dict[str, int] = {}
        next_tick = time.monotonic()
        for k in range(ticks):
            next_tick += period_s
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not driver.is_connected:  # the core reconnects in its own thread, untimed
                try:
                    driver.connect()
                    driver.enable()
                    reconnects += 1
                except DriverError:
                    pass
                next_tick = time.monotonic()
                continue
            started = time.monotonic()
            late_ms.append(1e3 * (started - next_tick))
            try:
                driver.read_state()
                driver.send_positions(q + 0.001 * np.sin(k / 50.0))
            except DriverError as exc:
                errors += 1
                kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
            io_ms.append(1e3 * (time.monotonic() - started))
        bound_s = driver.tick_io_bound_s
        driver.close()
    io, late = np.array(io_ms), np.array(late_ms)
    return {
        "io_median_ms": float(np.median(io)),
        "io_p99_ms": float(np.percentile(io, 99)),
        "io_max_ms": float(io.max()),
        "start_jitter_p99_ms": float(np.percentile(np.abs(late), 99)),
        "bound_ms": 1e3 * bound_s if bound_s is not None else float("nan"),
        "errors": float(errors),
        "reconnects": float(reconnects),
        "error_kinds": kinds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000)
    args = parser.parse_args()
    results = {backend: run(backend, args.ticks) for backend in ("json", "sdk")}
    print(f"{args.ticks} ticks at 100 Hz against the fake controller (loopback)\n")
    print(
        "| client | tick I/O median ms | p99 ms | max ms | declared bound ms "
        "| tick start jitter p99 ms | tick errors | reconnects |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for backend, r in results.items():
        name = (
            "project JSON client"
            if backend == "json"
            else "Realman SDK (robotic-arm 1.1.6, child process)"
        )
        print(
            f"| {name} | {r['io_median_ms']:.3f} | {r['io_p99_ms']:.3f} | {r['io_max_ms']:.3f} "
            f"| {r['bound_ms']:.1f} | {r['start_jitter_p99_ms']:.3f} | {r['errors']:.0f} "
            f"| {r['reconnects']:.0f} |"
        )
    for backend, r in results.items():
        if r["error_kinds"]:
            print(f"{backend} tick errors: {r['error_kinds']}")
    ratio = results["sdk"]["io_median_ms"] / results["json"]["io_median_ms"]
    print(f"\nSDK / JSON client, median tick I/O: {ratio:.2f}x")


if __name__ == "__main__":
    main()
