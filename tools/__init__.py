"""Book tooling: the nbval extension for measured outputs, tolerance measurement, reader notebooks, Colab checks."""
