#!/bin/bash
# The lab walkthrough (docs/walkthrough.md): record the teleop graph with a preset, convert,
# mix with the human dataset, watch live through the Foxglove bridge, show episodes in Rerun.
# Every step is timed. Usage: scripts/walkthrough.sh [OUTPUT_FOLDER]   (needs scripts/setup.sh)
# Background jobs of a script ignore SIGINT, so they are stopped with SIGTERM, which every hvp
# process handles like Ctrl-C.
set -u
cd "$(dirname "$0")/.."
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-91} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
H=.venv/bin/hvp
W=${1:-walkthrough_out}
if [ -e "$W" ] && [ ! -e "$W/.walkthrough" ]; then
    echo "walkthrough: $W exists and was not made by this script; give another folder" >&2
    exit 2
fi
rm -rf "$W"; mkdir -p "$W"; touch "$W/.walkthrough"
t() {
    local start=$EPOCHREALTIME
    "$@"
    local rc=$?
    echo "[time] $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $start}") s rc=$rc: $*"
    return $rc
}
# 1. the teleop graph driven by the sample video, the recorder with the preset, the live viewer
$H launch teleop_rm75_xhand camera_source:=video video_path:="$PWD"/assets/examples/human_hand_video.mp4 video_rate_hz:=15.0 robot_view_rate_hz:=15.0 > $W/graph.log 2>&1 &
GRAPH=$!
$H launch view port:=8799 > $W/view.log 2>&1 &
VIEW=$!
sleep 8
$H record -o $W/recordings --session walk --instruction "wave at the robot" --preset teleop_rm75_xhand > $W/record.log 2>&1 &
REC=$!
sleep 4
# a Foxglove-protocol client (test/foxglove_client.py stands in for the Foxglove app)
t .venv/bin/python - <<'PY'
import asyncio, sys
sys.path.insert(0, "test")
from foxglove_client import FoxgloveClient
async def main():
    async with FoxgloveClient("ws://127.0.0.1:8799") as c:
        want = ["/camera/camera/color/image_raw", "/hand/keypoints", "/arm/joint_states", "/robot_view/camera/color/image_raw"]
        ch = await c.wait_for_channels(want, timeout=30.0)
        await c.subscribe(want)
        got = await c.receive(want, count={k: 3 for k in want}, timeout=30.0)
        print("foxglove channels:", sorted(ch)); print("received:", {k: len(v) for k, v in got.items()})
asyncio.run(main())
PY
t $H teleop enable --duration 5
sleep 1
kill -TERM $REC; wait $REC; echo "record rc=$?"
kill -TERM $VIEW $GRAPH; wait $VIEW $GRAPH
t $H bag info $W/recordings/walk | head -30
t $H dataset from-bags $W/recordings/walk -o $W/teleop_ds --preset teleop_rm75_xhand
# 2. the human side from the same video
t $H video process assets/examples/human_hand_video.mp4 -o $W/videos -q
t $H dataset from-video $W/videos -o $W/human_ds
# 3. mix them in one loader (the 102-d human space)
t .venv/bin/python - <<PY
from human_video_policy.training.torch_dataset import ChunkDataset, ChunkDatasetConfig, MixedChunkDataset, chunk_collate
cfg = ChunkDatasetConfig(horizon=16, action_space="human", image_size=(64, 64))
h, r = ChunkDataset("$W/human_ds", cfg), ChunkDataset("$W/teleop_ds", cfg)
m = MixedChunkDataset([h, r], weights=[0.5, 0.5])
b = chunk_collate([m[i] for i in (0, len(m) - 1)])
print("mixed:", len(h), "human +", len(r), "robot samples; embodiments", b["embodiment"], "; keys", sorted(k for k in b if k.startswith("observation.images")))
PY
# 4. an episode in Rerun
t $H view dataset $W/teleop_ds --episode 0 --save $W/teleop_ep0.rrd
t $H view bag $W/recordings/walk/episode_000001 --save $W/bag_ep1.rrd
ls -la $W/*.rrd
