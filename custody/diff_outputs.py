"""The files of a comparison (`custody diff`, `custody rules diff`): diff.csv, diff.parquet,
diff.html and diff.json, each a rendering of one `Comparison`, written whole (each file to
a temporary name, then renamed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from custody.compare import Comparison
from custody.outputs import atomic_path, out_folder
from custody.render.csv import write_csv
from custody.render.diff_html import render_diff_html
from custody.render.json import summary_json

DIFF_FILES: tuple[str, ...] = ("diff.csv", "diff.parquet", "diff.html", "diff.json")


def write_diff_outputs(
    comparison: Comparison,
    out_dir: Path,
    *,
    summary: dict[str, Any] | None = None,
    title: str | None = None,
    extra: dict[str, str] | None = None,
    include_unchanged: bool = False,
) -> list[Path]:
    """Write the comparison's files into `out_dir` (created if needed); the paths written.

    `summary` is what diff.json holds (default: the comparison's own); `extra` maps further
    file names to their text (the Markdown summary of a rule change)."""
    out_dir = out_folder(out_dir)
    rows = comparison.reported(include_unchanged=include_unchanged)
    content = summary if summary is not None else comparison.summary()
    html = render_diff_html(comparison, title=title)
    texts = {"diff.html": html, "diff.json": summary_json(content), **(extra or {})}
    writers: dict[str, Callable[[Path], None]] = {
        "diff.csv": lambda path: write_csv(rows, path),
        "diff.parquet": lambda path: rows.write_parquet(path, compression="zstd", statistics=True),
    }
    for name, text in texts.items():
        writers[name] = _text_writer(text)
    written = []
    for name, write in writers.items():
        final = out_dir / name
        with atomic_path(final) as temporary:
            write(temporary)
        written.append(final)
    return written


def _text_writer(text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8", newline="\n")

    return write
