"""JUnit XML, the test-report format CI systems read (Jenkins, GitLab, GitHub Actions
reporters, Azure DevOps): `<testsuites>` of `<testsuite>` of `<testcase>`, a failing case
holding one `<failure>`. Built with ElementTree, so every value is escaped as XML needs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    classname: str
    failure: str | None = None
    """The failure's one-line message, or None for a passing case."""
    details: str = ""
    """The failure's body: what differs, where (file and line), what to do."""


@dataclass
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)


def _clean(text: str) -> str:
    """Text XML 1.0 can hold (control characters other than tab and newline are dropped)."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


def junit_xml(suites: list[Suite], *, name: str) -> str:
    """The suites as one JUnit XML document."""
    root = ET.Element("testsuites", name=_clean(name))
    total = failures = 0
    for suite in suites:
        failed = sum(1 for case in suite.cases if case.failure is not None)
        element = ET.SubElement(
            root,
            "testsuite",
            name=_clean(suite.name),
            tests=str(len(suite.cases)),
            failures=str(failed),
            errors="0",
            skipped="0",
            time="0",
        )
        for case in suite.cases:
            attributes = {"name": _clean(case.name), "classname": _clean(case.classname), "time": "0"}
            testcase = ET.SubElement(element, "testcase", attributes)
            if case.failure is not None:
                failure = ET.SubElement(testcase, "failure", message=_clean(case.failure), type="failure")
                failure.text = _clean(case.details or case.failure)
        total += len(suite.cases)
        failures += failed
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
