"""Repository-wide pytest configuration: nbval's comparison extended for measured cells (tools/nbval_tolerance.py)."""
pytest_plugins = ["tools.nbval_tolerance"]
