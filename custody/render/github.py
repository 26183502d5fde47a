"""GitHub Actions workflow commands (`::error file=...,line=...::message`): annotations
shown on the changed lines of a pull request. Values are escaped as the runner expects."""

from __future__ import annotations


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    message: str, *, level: str = "error", file: str | None = None, line: int | None = None, title: str | None = None
) -> str:
    """One annotation line (`level`: error, warning or notice)."""
    properties = []
    if file:
        properties.append(f"file={_property(file)}")
    if line:
        properties.append(f"line={line}")
    if title:
        properties.append(f"title={_property(title)}")
    head = f"::{level} {','.join(properties)}" if properties else f"::{level}"
    return f"{head}::{_data(message)}"
