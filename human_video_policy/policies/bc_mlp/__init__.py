"""Behaviour-cloning MLP baseline (``bc_mlp``): configuration (no torch) and modelling (torch)."""
