"""Repository-wide pytest configuration: nbval's comparison extended for measured cells (tools/nbval_measured.py)."""
pytest_plugins = ["tools.nbval_measured"]
