"""The version of the tool (written into every summary.json)."""

__version__ = "0.1.0"
