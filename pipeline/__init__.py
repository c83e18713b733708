"""The engine: spec -> runner -> stages -> writer."""

__version__ = "0.1.0"
