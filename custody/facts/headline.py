"""The inspection's headline figures (the seed report's funnel), computed from the facts."""

from __future__ import annotations

import polars as pl

from custody.contract import MHA_POWERS

HEADLINE_FACTS: tuple[str, ...] = (
    "person_id",
    "custody_record_id",
    "arrival_at",
    "age_at_arrival",
    "appears_under_18",
    "charged_count",
    "bail_refused_count",
    "la_requested_count",
    "transferred_to_la_count",
    "released_to_la_count",
    "certificate_count",
    "detention_power",
    "place_of_safety",
)
"""The facts `headline_figures` reads (and `run_check` keeps per record): computed whatever the rules need."""


def is_child() -> pl.Expr:
    """A child for the headline figures and the statistics: under 18 at arrival by date of
    birth or, without one, recorded as appearing under 18 (false when neither is known)."""
    return pl.coalesce(pl.col("age_at_arrival") < 18, pl.col("appears_under_18")).fill_null(False)


def headline_figures(facts: pl.LazyFrame) -> dict[str, int]:
    """The inspection's headline figures (the seed report's funnel), from the facts.

    A child here is a person under 18 at arrival by date of birth or, without one, recorded
    as appearing under 18; the rules apply the dated PACE thresholds themselves.
    """
    child = is_child()
    refused = child & (pl.col("charged_count") > 0) & (pl.col("bail_refused_count") > 0)
    row = (
        facts.select(
            pl.len().alias("records"),
            pl.col("person_id").filter(child).n_unique().alias("children_detained"),
            child.sum().alias("child_records"),
            refused.sum().alias("charged_and_refused_bail"),
            (refused & (pl.col("la_requested_count") > 0)).sum().alias("requests_made"),
            # A move is `transferred_to_la`, or `released` with `to_la` (the contract defines both).
            (refused & ((pl.col("transferred_to_la_count") > 0) | (pl.col("released_to_la_count") > 0)))
            .sum()
            .alias("moved"),
            (refused & (pl.col("certificate_count") > 0)).sum().alias("certificates"),
            (
                child
                & pl.col("detention_power").cast(pl.String).is_in(sorted(MHA_POWERS))
                & (pl.col("place_of_safety").cast(pl.String) == "police_station")
            )
            .sum()
            .alias("s136_police_station_uses"),
        )
        .collect()
        .row(0, named=True)
    )
    return {key: int(value or 0) for key, value in row.items()}
