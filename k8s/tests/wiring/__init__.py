"""Wiring checks over rendered Kubernetes manifests (see check_wiring.py)."""
