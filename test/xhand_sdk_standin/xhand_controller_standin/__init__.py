"""A stand-in for Robotera's ``xhand_controller`` package (tests only; the real one is a wheel)."""
