"""The data contract (../shared/DATA-CONTRACT.md): what comes in and what goes out.

Declarations only: the input tables (`records`) and the outputs (`findings`). Every other
layer reads its column names, types and vocabularies from here.
"""

from custody.contract.findings import (
    DATA_QUALITY_SCHEMA,
    FINDINGS_COLUMNS,
    FINDINGS_SCHEMA,
    Basis,
    Outcome,
    Severity,
)
from custody.contract.records import (
    ALL_DETAIL_CODES,
    CONTRACT_VERSION,
    DETENTION_COLUMNS,
    EVENT_COLUMNS,
    EVENT_DETAILS,
    EVENT_MEANINGS,
    MHA_POWERS,
    TABLES,
    UK_TZ,
    ColumnSpec,
    Detention,
    DetentionPower,
    Event,
    EventDetail,
    EventType,
    OffenceCategory,
    PlaceOfSafety,
    polars_schema,
)

__all__ = [
    "ALL_DETAIL_CODES",
    "CONTRACT_VERSION",
    "DATA_QUALITY_SCHEMA",
    "DETENTION_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_DETAILS",
    "EVENT_MEANINGS",
    "FINDINGS_COLUMNS",
    "FINDINGS_SCHEMA",
    "MHA_POWERS",
    "TABLES",
    "UK_TZ",
    "Basis",
    "ColumnSpec",
    "Detention",
    "DetentionPower",
    "Event",
    "EventDetail",
    "EventType",
    "OffenceCategory",
    "Outcome",
    "PlaceOfSafety",
    "Severity",
    "polars_schema",
]
