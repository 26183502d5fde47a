"""report.html and the terminal summary: self-contained, escaped, and what an inspector needs."""

from __future__ import annotations

import io
import re

import pytest
from conftest import RULES, finding, make_result
from rich.console import Console

from custody.findings import CheckResult
from custody.render.html import render_html
from custody.render.terminal import print_summary


def test_the_report_loads_nothing_from_a_network(result: CheckResult) -> None:
    page = render_html(result)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "url(" not in page
    assert "@import" not in page
    assert "<link" not in page
    assert "<script" not in page.lower()


def test_every_value_from_data_is_escaped(result: CheckResult) -> None:
    page = render_html(result)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "=HYPERLINK(&#34;http://evil.example/x&#34;,&#34;click&#34;)" in page


def test_the_report_has_metadata_headline_rules_exceptions_and_data_quality(result: CheckResult) -> None:
    page = render_html(result)
    for text in (
        "0.1.0",
        "sha256:rules",
        "sha256:inputs",
        "Children detained",
        "Charged and refused bail",
        "s136 detentions in a police station",
        "Certificates made",
        "Records no rule applied to",
    ):
        assert text in page, text
    for rule in RULES:
        assert rule.rule_id in page
        assert rule.title in page
        assert rule.citation in page
    assert "4 findings need case review" in page
    assert "bad date" in page
    assert "unknown event type" in page
    assert "31/02/2020 10:00" in page


def test_a_long_exception_list_is_capped_with_a_pointer_to_the_csv() -> None:
    findings = [finding("C1", f"R{i:03d}", "PACE-AA", "breach", "2020-01-01T00:00:00") for i in range(30)]
    result = make_result(findings, [("C1", f"R{i:03d}", "2020-01-01T00:00:00", 1) for i in range(30)])
    page = render_html(result, max_exception_rows=10)
    assert "The first 10 are shown here; the full list of 30 is in exceptions.csv and exceptions.xlsx" in page
    assert "R009" in page
    assert "R010" not in page


def test_an_empty_run_renders(tmp_path: object) -> None:
    page = render_html(make_result([], []))
    assert "No breaches" in page
    assert "Every input row and value could be used" in page


@pytest.mark.parametrize("width", [80, 120])
def test_the_terminal_summary_shows_rules_counts_and_outputs(result: CheckResult, width: int) -> None:
    from pathlib import Path

    console = Console(record=True, width=width, color_system="truecolor", force_terminal=True, file=io.StringIO())
    print_summary(console, result, [Path("out/findings.csv"), Path("out/summary.json")])
    text = console.export_text(clear=False)
    for rule in RULES:
        assert rule.rule_id in text
    assert "Children detained" in text
    assert "3 input rows or values could not be used" in text
    assert "findings.csv" in text
    assert "out" in text
    styled = console.export_text(styles=True)
    assert "\x1b[1;31m1\x1b[0m" in styled  # a breach count in bold red
