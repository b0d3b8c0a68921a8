"""The three QoS profiles of the topic contract (docs/ARCHITECTURE.md, "Topic contract").

- ``SENSOR_DATA``: camera images and other high-rate streams where the newest sample matters
  and a lost one is not worth a retransmission (best effort, keep last 5). A best-effort
  subscriber also matches a reliable publisher, so tools use it to listen to anything.
- ``RELIABLE``: joint states, joint commands, action chunks, poses, status (reliable, keep
  last 10, volatile).
- ``LATCHED``: topics whose last value stays valid until replaced, such as /safety/estop and
  the prompt embedding (reliable, transient local, keep last 1): a late subscriber still gets it.
"""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR_DATA: QoSProfile = qos_profile_sensor_data

RELIABLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

# /clock: rclpy's TimeSource subscribes best effort with depth 1; a reliable publisher matches it.
CLOCK = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
