"""telereg: a supervision platform for telecom regulators."""

__version__ = "0.1.0"
