"""Pure-numpy hand-motion core: keypoints -> wrist pose, joint angles, actions, segments, labels.

Inputs are MediaPipe-ordered 21-joint 3D hand keypoints in metres (``(21, 3)`` per frame or
``(T, 21, 3)`` for a sequence). Nothing here needs ROS or torch.

- :mod:`.keypoints`: joint indices, finger chains, input validation.
- :mod:`.rotations`: Euler xyz, axis-angle, orthonormalisation helpers.
- :mod:`.wrist_pose`: method A wrist 6D pose (position = wrist, R = [x y z]).
- :mod:`.joint_angles`: 15 MANO joints x 3 Euler angles, VITRA 51-d per-hand action.
- :mod:`.segmentation`: VITRA atomic action segmentation at wrist-speed minima.
- :mod:`.primitives`: RAD move / gripper primitives and a template captioner.
- :mod:`.tracker`: the HandTracker protocol and the MediaPipe backend (models in the wheel).
- :mod:`.onnx_tracker`: HandTracker for any ONNX keypoint model (metadata contract).
- :mod:`.lifting`: metric camera-frame hands from RGB or RGB-D.
- :mod:`.trajectory`: outlier rejection, gap filling, smoothing, pieces of a hand track.
"""
