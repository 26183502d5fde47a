"""Facts: one row per custody record with everything the rules read.

Built once from the loaded tables; rules never re-derive them. `specs` declares every
fact (kind, meaning, lineage), `build` computes them, `time` holds the legal time
arithmetic shared with the rule language, `settings` the dated legal values of this
layer, and `headline` the inspection's funnel figures.
"""

from custody.facts.build import EVENT_COLUMNS, OCCASION_ROW, FactTables, build_fact_tables, build_facts, in_child_order
from custody.facts.headline import HEADLINE_FACTS, headline_figures
from custody.facts.settings import FactSettings
from custody.facts.specs import NO_DETAIL, OCCASION_PREFIX, FactSpec, Kind, fact_specs, taint_column, taint_columns

__all__ = [
    "EVENT_COLUMNS",
    "HEADLINE_FACTS",
    "NO_DETAIL",
    "OCCASION_PREFIX",
    "OCCASION_ROW",
    "FactSettings",
    "FactSpec",
    "FactTables",
    "Kind",
    "build_fact_tables",
    "build_facts",
    "fact_specs",
    "headline_figures",
    "in_child_order",
    "taint_column",
    "taint_columns",
]
