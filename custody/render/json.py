"""summary.json: the run's figures as JSON with a fixed key order."""

from __future__ import annotations

import json
from typing import Any


def _json_default(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(value)


def summary_json(content: dict[str, Any]) -> str:
    """`content` (from `custody.findings.summary`) as the text of summary.json."""
    return json.dumps(content, indent=2, ensure_ascii=False, default=_json_default) + "\n"
