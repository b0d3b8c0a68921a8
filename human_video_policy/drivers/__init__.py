"""Robot drivers behind one interface (:class:`~.base.JointDriver`): real hardware protocols
(Realman JSON/TCP, XHand RS485, Dynamixel 2.0) and MuJoCo sims alike. No rclpy here."""
