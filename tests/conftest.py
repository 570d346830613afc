"""Shared fixtures. Black-box fixtures (a real `ojd` in a short isolated state dir) live in
`tests/blackbox.py` so unit tests never pay for them."""
