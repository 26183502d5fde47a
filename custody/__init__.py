"""custody: checks children's police custody records against the law.

The library API a notebook needs::

    import custody

    records = custody.load_records("sample_records/demo")   # a RecordSet: tables + data quality
    rules = custody.load_rules()                            # the shipped rules/ (or a folder)
    result = custody.check("sample_records/demo", rules=rules)
    result.findings                                         # one row per (record, rule)

    profile = custody.load_profile("sample_records/export_wide/profile.yaml")
    result = custody.check("sample_records/export_wide", profile=profile)   # a force's export

The layers, bottom to top: `contract` (what comes in and goes out), `read` (files ->
tables and data quality), `facts`, `engine` (rule files, expression language,
evaluation), `findings` (the findings table and all derived from it), `render` (one
module per output format), `outputs` (the output set), `pipeline` (read -> facts ->
engine -> findings), `cli`. Nothing imports from a layer above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from custody.version import __version__

if TYPE_CHECKING:
    from custody.findings import CheckResult
    from custody.pipeline import PreparedRules, check, load_rules
    from custody.read.loader import RecordSet, load_records
    from custody.read.profile import load_profile

__all__ = [
    "CheckResult",
    "PreparedRules",
    "RecordSet",
    "__version__",
    "check",
    "load_profile",
    "load_records",
    "load_rules",
]

_EXPORTS = {
    "CheckResult": "custody.findings",
    "PreparedRules": "custody.pipeline",
    "check": "custody.pipeline",
    "load_rules": "custody.pipeline",
    "RecordSet": "custody.read.loader",
    "load_records": "custody.read.loader",
    "load_profile": "custody.read.profile",
}


def __getattr__(name: str) -> Any:
    """The API's names, imported when first used (so `import custody` stays light)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'custody' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
