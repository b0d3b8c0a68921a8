"""Human hand -> robot hand retargeting (XHand), angle matching and the WidowX gripper map."""

from __future__ import annotations

from human_video_policy.retargeting.config import DexPilotConfig, RetargetConfig
from human_video_policy.retargeting.xhand import RetargetResult, XHandRetargeter

__all__ = ["DexPilotConfig", "RetargetConfig", "RetargetResult", "XHandRetargeter"]
