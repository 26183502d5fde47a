"""custody: checks children's police custody records against the law."""

__version__ = "0.1.0"
