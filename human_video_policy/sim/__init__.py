"""MuJoCo simulation: the WidowX reach world, its task, the scripted expert, evaluation."""
