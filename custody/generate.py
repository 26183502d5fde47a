"""Synthetic record sets: a realistic national extract of children's custody records.

`generate_record_set` writes `detentions.<fmt>` and `events.<fmt>` in exactly the
form of the data contract (../shared/DATA-CONTRACT.md). The data are clean (every
row reads); the *law* is not always followed, at the rates reported in LAW.md
("Real-world figures"), so the checker has realistic breaches to find.

Everything is vectorised with numpy: each column is drawn for all records of a
chunk (CHUNK_RECORDS records) at once, and events come from per-record event plans
(one array per plan "slot") that are stacked, filtered and sorted once per chunk.
There is no per-row Python, so a million records (about 10.6 million events) take
seconds, and memory stays bounded by the chunk: ten million records are written
chunk by chunk (see `generate_record_set`).

Times are drawn as instants (UTC seconds); every interval below (6 h, 9 h, 24 h)
is elapsed time, as the law counts it. Times of day ("court next morning", the
arrival profile) are UK local time, converted with the real BST rules, so the
clock changes are crossed naturally.

Constants marked LAW.md come from LAW.md "Real-world figures" or its rules;
constants marked *assumption* have no published source in LAW.md and are
plausible illustrations: change them freely.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from custody.contract import EVENT_DETAILS, UK_TZ, polars_schema

__all__ = ["generate_record_set"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400

# ------------------------------------------------------------------ extract window

#: A ten-year national extract: arrivals from 2014-01-01 to 2024-12-31 (UK time), so
#: both sides of 2015-10-26, 2017-12-11 and 2018-07-31 (LAW.md "Dates") occur.
FIRST_ARRIVAL_DATE = dt.date(2014, 1, 1)
LAST_ARRIVAL_DATE = dt.date(2024, 12, 31)
#: The extract is taken at 2025-01-01 00:00 UK time (GMT, so also UTC): events after
#: it are not in the extract, so records still open then have no `released`.
EXTRACT_TAKEN_AT = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

#: Relative number of child custody records by arrival year. *Assumption*: child
#: arrests fell through the decade; LAW.md gives no yearly series.
ARRIVAL_YEAR_WEIGHTS: dict[int, float] = {
    2014: 1.30, 2015: 1.18, 2016: 1.08, 2017: 1.00, 2018: 0.95, 2019: 0.95,
    2020: 0.80, 2021: 0.85, 2022: 0.90, 2023: 0.92, 2024: 0.92,
}  # fmt: skip

#: Arrivals by UK local hour of day (0..23). *Assumption*: few in the small hours,
#: most in the afternoon and evening.
ARRIVAL_HOUR_WEIGHTS: tuple[float, ...] = (
    3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.8, 1.2, 2.0, 3.0, 4.0, 4.5,
    5.0, 5.5, 6.0, 6.5, 6.5, 6.5, 6.5, 6.0, 5.5, 5.0, 4.5, 3.5,
)  # fmt: skip

# ------------------------------------------------------------------ children

#: Age in whole years at a child's first record in the extract (10..17), weighted to
#: 15-17. *Assumption* (LAW.md: children are 6.4% of detentions; no age split given).
FIRST_RECORD_AGE_WEIGHTS: dict[int, float] = {
    10: 0.5, 11: 1.0, 12: 2.5, 13: 5.0, 14: 9.0, 15: 14.0, 16: 20.0, 17: 24.0,
}  # fmt: skip
#: Mean custody records per child (person_id reused); counts are geometric (most
#: children once, a few many times). From the brief: about 1.3.
RECORDS_PER_CHILD = 1.3
#: Mean gap between a child's successive records, in days. *Assumption*.
REPEAT_GAP_MEAN_DAYS = 150.0
#: Extra share of children born on 29 February (on top of the natural ~0.07%), so
#: that small samples exercise the leap-day rule (LAW.md "Age").
EXTRA_LEAP_DAY_BIRTH_SHARE = 0.002
#: Records with no date of birth; then `appears_under_18` is recorded (LAW.md "Age").
MISSING_DOB_SHARE = 0.03
#: Where the date of birth is missing, the officer's view that the child appears under 18.
APPEARS_UNDER_18_SHARE = 0.95
#: Looked-after children (the brief: about 10%).
LOOKED_AFTER_SHARE = 0.10
#: Sex as recorded. *Assumption*: most children in custody are boys.
SEX_WEIGHTS: dict[str, float] = {"M": 0.85, "F": 0.15}
#: Ethnicity as recorded (broad groups). *Assumption*, for breakdowns only.
ETHNICITY_WEIGHTS: dict[str, float] = {
    "White": 0.62, "Black": 0.14, "Asian": 0.09, "Mixed": 0.08, "Other": 0.04, "Not stated": 0.03,
}  # fmt: skip
#: Share of records held by a force other than the child's home force. *Assumption*.
OTHER_FORCE_SHARE = 0.08

#: The 43 territorial forces of England and Wales: (name, record-id code, weight,
#: custody suites). Weights are roughly the population served (*assumption*); the
#: suites are towns in the force area, illustrative rather than an official list.
FORCES: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("Avon and Somerset", "ASC", 1.7, ("Keynsham", "Patchway", "Bridgwater", "Yeovil")),
    ("Bedfordshire", "BED", 0.7, ("Kempston", "Luton")),
    ("Cambridgeshire", "CAM", 0.87, ("Cambridge", "Peterborough", "Huntingdon")),
    ("Cheshire", "CHE", 1.1, ("Middlewich", "Runcorn", "Blacon")),
    ("City of London", "COL", 0.05, ("Bishopsgate",)),
    ("Cleveland", "CLE", 0.57, ("Middlesbrough", "Hartlepool")),
    ("Cumbria", "CUM", 0.5, ("Carlisle", "Barrow-in-Furness", "Workington", "Kendal")),
    ("Derbyshire", "DER", 1.1, ("Derby", "Chesterfield", "Buxton")),
    ("Devon and Cornwall", "DCP", 1.8, ("Exeter", "Plymouth", "Torquay", "Camborne", "Bodmin", "Barnstaple")),
    ("Dorset", "DOR", 0.78, ("Bournemouth", "Weymouth")),
    ("Durham", "DUR", 0.65, ("Durham", "Peterlee", "Darlington")),
    ("Dyfed-Powys", "DPP", 0.52, ("Llanelli", "Aberystwyth", "Haverfordwest", "Newtown")),
    ("Essex", "ESX", 1.8, ("Chelmsford", "Basildon", "Colchester", "Harlow", "Southend")),
    ("Gloucestershire", "GLO", 0.64, ("Gloucester", "Cheltenham")),
    (
        "Greater Manchester",
        "GMP",
        2.8,
        ("Manchester Central", "Bury", "Cheadle Heath", "Swinton", "Wigan", "Ashton-under-Lyne", "Longsight"),
    ),
    ("Gwent", "GWE", 0.6, ("Ystrad Mynach", "Newport")),
    ("Hampshire", "HAM", 2.0, ("Southampton", "Portsmouth", "Basingstoke", "Newport (Isle of Wight)", "Aldershot")),
    ("Hertfordshire", "HER", 1.2, ("Hatfield", "Stevenage", "Watford")),
    ("Humberside", "HUM", 0.95, ("Hull", "Grimsby", "Scunthorpe", "Bridlington")),
    ("Kent", "KEN", 1.9, ("Maidstone", "Canterbury", "Medway", "Folkestone", "Tonbridge", "Gravesend")),
    ("Lancashire", "LAN", 1.5, ("Preston", "Blackpool", "Blackburn", "Lancaster", "Burnley", "Skelmersdale")),
    ("Leicestershire", "LEI", 1.1, ("Leicester", "Beaumont Leys", "Loughborough")),
    ("Lincolnshire", "LIN", 0.77, ("Lincoln", "Boston", "Grantham", "Skegness")),
    ("Merseyside", "MER", 1.4, ("Liverpool", "Birkenhead", "St Helens", "Southport")),
    (
        "Metropolitan Police",
        "MPS",
        8.9,
        (
            "Brixton",
            "Croydon",
            "Lewisham",
            "Wembley",
            "Stoke Newington",
            "Charing Cross",
            "Bethnal Green",
            "Tottenham",
            "Romford",
            "Colindale",
            "Ilford",
            "Hammersmith",
            "Sutton",
            "Bromley",
        ),
    ),
    ("Norfolk", "NFK", 0.92, ("Aylsham", "Wymondham", "King's Lynn", "Great Yarmouth")),
    ("North Wales", "NWP", 0.7, ("St Asaph", "Caernarfon", "Wrexham")),
    ("North Yorkshire", "NYP", 0.83, ("York", "Harrogate", "Scarborough", "Northallerton")),
    ("Northamptonshire", "NTH", 0.77, ("Northampton", "Kettering")),
    ("Northumbria", "NBR", 1.5, ("Newcastle", "Wallsend", "Sunderland", "Bedlington")),
    ("Nottinghamshire", "NOT", 1.2, ("Nottingham", "Mansfield")),
    ("South Wales", "SWP", 1.3, ("Cardiff Bay", "Swansea", "Bridgend", "Merthyr Tydfil")),
    ("South Yorkshire", "SYP", 1.4, ("Sheffield", "Doncaster", "Barnsley", "Rotherham")),
    ("Staffordshire", "STA", 1.1, ("Stoke-on-Trent", "Cannock", "Burton upon Trent")),
    ("Suffolk", "SUF", 0.76, ("Martlesham", "Bury St Edmunds", "Lowestoft")),
    ("Surrey", "SUR", 1.2, ("Guildford", "Staines", "Salfords")),
    ("Sussex", "SUS", 1.7, ("Brighton", "Crawley", "Eastbourne", "Worthing", "Chichester", "Hastings")),
    (
        "Thames Valley",
        "TVP",
        2.4,
        ("Abingdon", "Aylesbury", "Banbury", "High Wycombe", "Reading", "Milton Keynes", "Slough", "Newbury"),
    ),
    ("Warwickshire", "WAR", 0.59, ("Leamington Spa", "Nuneaton")),
    ("West Mercia", "WMC", 1.3, ("Worcester", "Shrewsbury", "Kidderminster", "Telford", "Hereford")),
    (
        "West Midlands",
        "WMP",
        2.9,
        ("Birmingham Steelhouse Lane", "Perry Barr", "Oldbury", "Coventry", "Wolverhampton", "Bournville Lane"),
    ),
    ("West Yorkshire", "WYP", 2.3, ("Leeds", "Bradford", "Huddersfield", "Wakefield")),
    ("Wiltshire", "WIL", 0.72, ("Melksham", "Swindon")),
)

# ------------------------------------------------------------------ the detention

#: Power of detention. *Assumption* except MHA: s136 about 3% and s135 a little
#: (LAW.md: 753 children detained under s136 in 2013-14, a few % of child detentions).
DETENTION_POWER_WEIGHTS: dict[str, float] = {
    "pace_arrest": 0.860, "warrant": 0.040, "bail_breach": 0.030, "court_remand": 0.020,
    "other": 0.020, "mha_s136": 0.028, "mha_s135": 0.002,
}  # fmt: skip
#: Share of child MHA detentions whose place of safety is a police station, by
#: period: LAW.md 2013-14: 236 of 753 children (31%) before the 2015 Code of
#: Practice; falling after it (*assumption*: 10%); after 2017-12-11 s136A forbids it,
#: but police stations were still used 322 times in 2023/24 (all ages), so rare.
POLICE_STATION_POS_SHARE: tuple[tuple[dt.date, float], ...] = (
    (dt.date(2015, 4, 1), 0.31),  # before the MHA Code of Practice 2015
    (dt.date(2017, 12, 11), 0.10),  # before s136A
    (dt.date(9999, 12, 31), 0.005),  # from s136A
)
#: Other places of safety when not a police station. *Assumption*.
OTHER_POS_WEIGHTS: dict[str, float] = {
    "health_based": 0.55, "emergency_department": 0.30, "hospital": 0.10, "other": 0.05,
}  # fmt: skip
#: Offence category (PACE s38(6A) meaning). *Assumption*.
OFFENCE_CATEGORY_WEIGHTS: dict[str, float] = {"violent": 0.35, "sexual": 0.04, "other": 0.61}
#: Share of offences that are indictable or either-way, by category. *Assumption*.
INDICTABLE_SHARE: dict[str, float] = {"violent": 0.90, "sexual": 0.95, "other": 0.60}

# ------------------------------------------------------------------ PACE events

#: Arrival to detention authorised: log-normal, median minutes. *Assumption*.
AUTHORISATION_MEDIAN_MINUTES = 15.0
#: Appropriate adult asked to attend (Code C 3.15), and the delay after authorisation.
AA_REQUESTED_SHARE = 0.93
AA_REQUEST_DELAY_MEDIAN_MINUTES = 25.0
#: Appropriate adult arrives, given requested; LAW.md: arrival to AA arrival about
#: 5.5 h on average, up to 22 h.
AA_ARRIVED_SHARE = 0.92
AA_ARRIVAL_MEAN_HOURS = 5.5
AA_ARRIVAL_MAX_HOURS = 22.0
#: Person responsible for welfare informed (Code C 3.13). *Assumption*.
WELFARE_INFORMED_SHARE = 0.95
WELFARE_DELAY_MEDIAN_MINUTES = 30.0
#: From AA arrival (interview) to the charging decision, median hours. *Assumption*.
DECISION_AFTER_AA_MEDIAN_HOURS = 2.5
#: From authorisation to the decision when no AA arrived, median hours. *Assumption*.
DECISION_NO_AA_MEDIAN_HOURS = 5.0
#: Pre-charge detentions drawn over 24 h: share cut back under 24 h; of the rest,
#: indictable offences get a superintendent's s42 extension (LAW.md PACE-CLOCK) with
#: this probability, and a few of those a s43 warrant; the others overrun (a breach).
OVER_24H_BROUGHT_UNDER_SHARE = 0.70
S42_EXTENSION_SHARE = 0.85
S43_WARRANT_SHARE_OF_EXTENDED = 0.05
#: PACE s40 reviews (LAW.md PACE-REVIEW): first due 6 h after authorisation, then
#: every 9 h. Shares on time, late-minutes mean, and postponed reviews. *Assumption*.
FIRST_REVIEW_ON_TIME_SHARE = 0.88
LATER_REVIEW_ON_TIME_SHARE = 0.93
LATE_REVIEW_MEAN_MINUTES = 60.0
POSTPONED_REVIEW_SHARE = 0.04
MAX_REVIEWS = 10
#: Juvenile placed in a cell (Code C 8.8), a second placement after interview, and
#: the recorded reason (None: no reason recorded). *Assumption*.
CELL_PLACED_SHARE = 0.70
SECOND_CELL_SHARE = 0.60
SAME_CELL_REASON_SHARE = 0.80  # the second placement repeats the first reason
CELL_REASON_WEIGHTS: dict[str | None, float] = {
    "no_alternative": 0.40, "supervision": 0.15, "comfort": 0.10, "other": 0.10, None: 0.25,
}  # fmt: skip
# ------------------------------------------------------------------ safeguards (contract v1.1)

#: Strip searches exposing intimate parts (Code C Annex A 11), share of PACE-like
#: records. *Assumption* ("a few percent of children", issue 17; no national rate in LAW.md).
STRIP_SEARCH_SHARE = 0.03
#: Who was present at a strip search (the detail code; None: not recorded). LAW.md: no
#: appropriate adult confirmed present in 45-52% of searches of children (Children's
#: Commissioner), here aa_absent plus not recorded, 45%.
STRIP_SEARCH_DETAIL_WEIGHTS: dict[str | None, float] = {
    "aa_present": 0.44, "aa_declined": 0.04, "urgent": 0.07, "aa_absent": 0.22, None: 0.23,
}  # fmt: skip
#: Interviews about the offence in pre-charge detentions (arrests and `other`), a second
#: interview, and an interview whose end is not recorded. *Assumption* ("most").
INTERVIEW_SHARE = 0.80
SECOND_INTERVIEW_SHARE = 0.15
INTERVIEW_END_MISSING_SHARE = 0.05
#: Who was present, as recorded on the interview (None: no detail; presence is then
#: inferred from aa_arrived/aa_left). *Assumption*.
INTERVIEW_DETAIL_WEIGHTS: dict[str | None, float] = {
    "aa_present": 0.35, "urgent_authorised": 0.01, "aa_absent": 0.02, None: 0.62,
}  # fmt: skip
#: The appropriate adult's departure is recorded (after the last interview), or, rarely,
#: during the first interview. *Assumption*.
AA_LEFT_RECORDED_SHARE = 0.70
AA_LEFT_DURING_INTERVIEW_SHARE = 0.02
#: Who was told of the detention (welfare_informed detail; None: not recorded), for a
#: looked-after child and for the others. *Assumption* (IOPC 2023: the authority is not
#: always told).
LOOKED_AFTER_WELFARE_WEIGHTS: dict[str | None, float] = {
    "local_authority": 0.60, "parent_guardian": 0.22, "other": 0.08, None: 0.10,
}  # fmt: skip
WELFARE_DETAIL_WEIGHTS: dict[str | None, float] = {"parent_guardian": 0.82, "other": 0.05, None: 0.13}

#: Charged in the episode (pace_arrest only): the brief's ~35% of records.
CHARGED_SHARE_OF_ARRESTS = 0.40
#: Bail refused after charge (PACE s38(1)): about a quarter of charged children
#: (the brief; LAW.md: West Midlands 2016, 384 refused bail).
BAIL_REFUSED_SHARE = 0.25
#: Outcome of uncharged arrests. *Assumption*.
UNCHARGED_RELEASE_WEIGHTS: dict[str, float] = {"nfa": 0.35, "rui": 0.30, "bail": 0.12, "other": 0.23}
#: Release after a detention under power `other`. *Assumption*.
OTHER_POWER_RELEASE_WEIGHTS: dict[str, float] = {"other": 0.6, "nfa": 0.4}
#: Records with no `released` although the extract was taken later (lost or still
#: open entries). The extract cut-off adds the records genuinely still in custody.
RELEASE_MISSING_SHARE = 0.002

# ------------------------------------------------------------------ s38(6)

#: LAW.md: requests are made in roughly 62-69% of refused-bail cases (West Midlands
#: 239/384, Met 310/449, Cambridgeshire 33/48). Each force gets a rate drawn from
#: this range (mean 0.67); for someone not a juvenile at the refusal (a 17-year-old
#: before 2015-10-26, or 18 by then) the rate is NOT_JUVENILE_REQUEST_SHARE.
LA_REQUEST_RATE_RANGE = (0.60, 0.74)
NOT_JUVENILE_REQUEST_SHARE = 0.30
#: LAW.md: 1-17% of requests end in a move (West Midlands 22/239, Met 3/310,
#: Cambridgeshire 2/33). Each force gets a rate drawn from this range.
LA_TRANSFER_RATE_RANGE = (0.01, 0.17)
#: Secure accommodation asked for, by offence category. *Assumption*.
SECURE_REQUEST_SHARE: dict[str, float] = {"violent": 0.35, "sexual": 0.35, "other": 0.15}
#: Request recorded with a local authority response. *Assumption*.
LA_RESPONSE_SHARE = 0.88
#: Local authority response when the child is not moved. *Assumption*.
LA_RESPONSE_WEIGHTS: dict[str, dict[str, float]] = {
    "secure": {"no_secure_available": 0.55, "refused": 0.20, "no_response": 0.15, "accepted": 0.10},
    "non_secure": {"refused": 0.45, "no_response": 0.30, "accepted": 0.25},
}
#: Children not moved who get a certificate. LAW.md: inspectors found 2 of 12
#: records with one; a minority.
CERTIFICATE_SHARE = 0.20
CERTIFICATE_NO_SECURE_SHARE = 0.20
#: Refused-bail children (not moved) whose first court appearance is recorded, and
#: certificates recorded as produced to that court (s38(7)). *Assumption*: custody
#: data often lack court events (LAW.md S38-COURT).
COURT_APPEARANCE_SHARE = 0.85
COURT_APPEARANCE_SHARE_TRANSFERRED = 0.50
CERTIFICATE_TO_COURT_SHARE = 0.60
#: The first court sitting: bail refused (or a warrant arrest) before this local hour
#: goes to court the same day, else the next morning; no Sunday courts. The child
#: leaves for court 08:00-09:15 (at least an hour after the refusal) and appears from
#: 10:00. With the charge times drawn here this gives a mean time held after charge,
#: bail refused, of about 11.5 h (LAW.md: Met 2017, 11h32m).
SAME_DAY_COURT_BEFORE_HOUR = 13
LEAVE_FOR_COURT_HOUR = 8.0
LEAVE_FOR_COURT_SPREAD_MINUTES = 75.0
COURT_APPEARANCE_HOUR = 10.0
COURT_APPEARANCE_SPREAD_HOURS = 3.0

#: Circumstances stated on s38(6) certificates, with weights. Some are lawful
#: (transport, weather; the court-timing case from 2018-07-31), most are the ones
#: Note 16D says are never enough (LAW.md: behaviour, offence, lack of a bed).
IMPRACTICABLE_NOTES: dict[str, float] = {
    "No beds available from the local authority": 0.22,
    "Local authority unable to provide accommodation tonight": 0.12,
    "EDT did not respond to repeated calls": 0.06,
    "The child's violent behaviour": 0.10,
    "Seriousness of the offence (robbery)": 0.06,
    "Child refused to go to local authority accommodation": 0.05,
    "Child is a risk to staff and other residents of the placement": 0.05,
    "Charged late at night, out of hours team closed": 0.06,
    "Heavy snow, roads closed": 0.04,
    "Flooding on the only route to the placement, transport unable to travel": 0.03,
    "No police transport available: all vehicles committed to a major incident": 0.04,
    "Due at court at 09:00, transfer would deprive the child of rest": 0.10,
    "Placement two hours away and child due at court 10:00, would miss court": 0.07,
}
NO_SECURE_NOTES: dict[str, float] = {
    "No secure bed available in the region; non-secure accommodation would not protect the public "
    "from serious harm": 0.35,
    "Secure accommodation requested, none available; charged with knife-point robbery, risk of "
    "serious harm to the public": 0.25,
    "No secure bed available": 0.25,
    "No secure accommodation available nationally": 0.15,
}
#: Notes on local authority responses, by response code; written on this share.
LA_RESPONSE_NOTE_SHARE = 0.40
LA_RESPONSE_NOTES: dict[str, tuple[str, ...]] = {
    "accepted": ("Placement found, awaiting transport", "EDT will accept after 08:00"),
    "refused": ("EDT: no placements available tonight", "Local authority declined, no foster carers"),
    "no_secure_available": ("No secure beds in the region", "Secure unit full, none nationally"),
    "no_response": ("Left voicemail with EDT, no call back", "No answer from out of hours team"),
}

# ------------------------------------------------------------------ MHA

#: s136 consultation (s136(1C)) recorded before removal: a duty from 2017-12-11,
#: common practice (street triage) before it. *Assumption*.
MHA_CONSULTATION_SHARE_AFTER_2017 = 0.85
MHA_CONSULTATION_SHARE_BEFORE = 0.15
MHA_CONSULTEE_WEIGHTS: dict[str, float] = {
    "nurse": 0.35, "paramedic": 0.25, "doctor": 0.15, "amhp": 0.15, "other": 0.10,
}  # fmt: skip
#: Assessment completed, median hours after arrival at the place of safety; most
#: within 24 h with a tail. Over-long detentions from 2017-12-11 mostly get an
#: s136B extension or are cut back; before, the limit was 72 h (LAW.md MHA-DURATION).
MHA_ASSESSMENT_SHARE = 0.97
MHA_ASSESSMENT_MEDIAN_HOURS = 5.0
MHA_EXTENSION_SHARE_OF_OVERRUNS = 0.60
MHA_OVERRUN_BROUGHT_UNDER_SHARE = 0.60
MHA_RELEASE_WEIGHTS: dict[str, float] = {"other": 0.65, "to_hospital": 0.35}

# ------------------------------------------------------------------ vocabularies

_DETAILS: tuple[str, ...] = tuple(sorted({d for ds in EVENT_DETAILS.values() for d in ds}))
_DETAIL_CODE = {d: i for i, d in enumerate(_DETAILS)}
_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_DETAILS)
_EVENT_CODE = {e: i for i, e in enumerate(_EVENT_TYPES)}
_NOTES: tuple[str, ...] = (
    *IMPRACTICABLE_NOTES,
    *NO_SECURE_NOTES,
    *(n for ns in LA_RESPONSE_NOTES.values() for n in ns),
)
_NOTE_CODE = {n: i for i, n in enumerate(_NOTES)}
_POWERS: tuple[str, ...] = tuple(DETENTION_POWER_WEIGHTS)
_POS: tuple[str, ...] = ("police_station", *OTHER_POS_WEIGHTS)
_OFFENCES: tuple[str, ...] = tuple(OFFENCE_CATEGORY_WEIGHTS)


def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _epoch_seconds(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _last_sunday(year: int, month: int) -> dt.date:
    last = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def _bst_transitions() -> I64:
    """UTC instants at which BST starts and ends, alternating, 1960-2040."""
    out: list[int] = []
    for year in range(1960, 2041):
        for month in (3, 10):
            day = _last_sunday(year, month)
            out.append(_epoch_seconds(dt.datetime(day.year, day.month, day.day, 1, tzinfo=dt.UTC)))
    return np.asarray(out, dtype=np.int64)


_TRANSITIONS = _bst_transitions()


def _uk_offset(utc: I64) -> I64:
    """UK offset from UTC (0 or 3600 seconds) at each UTC instant (rules of 1972-2040)."""
    inside = np.searchsorted(_TRANSITIONS, utc, side="right") % 2 == 1
    return np.where(inside, 3600, 0).astype(np.int64)


def _local_to_utc(local: I64) -> I64:
    """UTC instants for UK wall-clock seconds: the earlier reading of a repeated hour,
    and an hour later for a time in the spring gap."""
    return local - _uk_offset(local - 3600)


class _Rng:
    """A numpy generator with the few draws used here, vectorised."""

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        self.g = np.random.Generator(np.random.PCG64(seed))

    @classmethod
    def for_chunk(cls, seed: int, chunk: int) -> _Rng:
        """The generator of chunk `chunk`: the seed itself for the first chunk (so a
        set of one chunk is what one generator gives), else the chunk's own stream,
        independent of the others (numpy's `SeedSequence(seed).spawn(...)[chunk]`)."""
        return cls(seed if chunk == 0 else np.random.SeedSequence(seed, spawn_key=(chunk,)))

    def spawn(self) -> _Rng:
        """An independent generator derived from this one's seed, without drawing from it:
        what this one draws next is unchanged."""
        child = _Rng.__new__(_Rng)
        child.g = self.g.spawn(1)[0]
        return child

    def u(self, n: int) -> F64:
        return self.g.random(n)

    def chance(self, p: float | F64, n: int) -> Bools:
        return self.g.random(n) < p

    def uniform(self, low: float | F64, high: float | F64, n: int) -> F64:
        return self.g.uniform(low, high, n)

    def lognormal(self, median: float, sigma: float, n: int) -> F64:
        return self.g.lognormal(math.log(median), sigma, n)

    def exponential(self, mean: float, n: int) -> F64:
        return self.g.exponential(mean, n)

    def pick(self, weights: Mapping[Any, float] | tuple[float, ...], n: int) -> I64:
        """Indices drawn with the given relative weights."""
        w = np.asarray(list(weights.values()) if isinstance(weights, dict) else weights, dtype=np.float64)
        cdf = np.cumsum(w / w.sum())
        return np.minimum(np.searchsorted(cdf, self.g.random(n), side="right"), len(w) - 1).astype(np.int64)


def _codes(labels: tuple[str | None, ...], vocab: dict[str, int]) -> I64:
    return np.asarray([-1 if label is None else vocab[label] for label in labels], dtype=np.int64)


class _EventPlan:
    """Events collected slot by slot: each slot is one possible event per record.

    Each event is packed into one int64 key: record, minute after arrival, slot (the
    planned order of events that share a minute), detail code and note code. One sort
    of the keys orders the events by record and time; everything is decoded from the
    sorted keys, so ten million events cost a few array passes.
    """

    _MINUTE_BIAS = 4096  # minutes before arrival allowed (the s136 consultation)
    _MINUTE_BITS = 19  # up to about a year after arrival
    _SLOT_BITS = 6
    _DETAIL_BITS = (len(_DETAILS) + 1).bit_length()
    _NOTE_BITS = (len(_NOTES) + 1).bit_length()
    _LOW_BITS = _MINUTE_BITS + _SLOT_BITS + _DETAIL_BITS + _NOTE_BITS

    def __init__(self, arrival: I64) -> None:
        assert arrival.size < 1 << (63 - self._LOW_BITS), "too many records for the sort key"
        self.arrival = arrival
        self.keys: list[I64] = []
        self.slot_type: list[int] = []

    def add(
        self,
        event_type: str,
        at: F64,
        present: Bools,
        detail: I64 | str | None = None,
        note: I64 | None = None,
    ) -> None:
        """`at`: seconds after arrival; `detail`/`note`: codes (-1 none) per record or one code."""
        rec = np.flatnonzero(present).astype(np.int64)
        self.add_at(
            event_type,
            rec,
            at[rec],
            detail if detail is None or isinstance(detail, str) else detail[rec],
            None if note is None else note[rec],
        )

    def add_at(
        self,
        event_type: str,
        rec: I64,
        at: F64,
        detail: I64 | str | None = None,
        note: I64 | None = None,
    ) -> None:
        """Like `add`, with one entry per event in `rec`, `at`, `detail` and `note`."""
        slot = len(self.slot_type)
        assert slot < 1 << self._SLOT_BITS, "too many event slots for the sort key"
        self.slot_type.append(_EVENT_CODE[event_type])
        # Whole minutes after arrival, rounded up: monotone, so the planned order holds.
        minutes = np.ceil(at / MINUTE).astype(np.int64) + self._MINUTE_BIAS
        assert minutes.size == 0 or (minutes.min() >= 0 and minutes.max() < 1 << self._MINUTE_BITS)
        if detail is None:
            detail_code: I64 | int = 0
        elif isinstance(detail, str):
            detail_code = _DETAIL_CODE[detail] + 1
        else:
            detail_code = detail + 1
        note_code: I64 | int = 0 if note is None else note + 1
        key = rec << self._MINUTE_BITS | minutes
        key = key << self._SLOT_BITS | slot
        key = key << self._DETAIL_BITS | detail_code
        key = key << self._NOTE_BITS | note_code
        self.keys.append(key)

    def frame(self, record_ids: pl.Series) -> pl.DataFrame:
        keys = np.sort(np.concatenate(self.keys))  # keys are unique: the order is total

        def field(shift: int, bits: int) -> I64:
            return (keys >> shift) & ((1 << bits) - 1)

        note = field(0, self._NOTE_BITS) - 1
        detail = field(self._NOTE_BITS, self._DETAIL_BITS) - 1
        slot = field(self._NOTE_BITS + self._DETAIL_BITS, self._SLOT_BITS)
        minutes = field(self._LOW_BITS - self._MINUTE_BITS, self._MINUTE_BITS) - self._MINUTE_BIAS
        rec = keys >> self._LOW_BITS
        when = self.arrival[rec] + minutes * 60
        raw = pl.DataFrame(
            {
                "rec": rec,
                "t": when,
                "type": np.asarray(self.slot_type, dtype=np.int8)[slot],
                "detail": detail.astype(np.int8),
                "note": note.astype(np.int8),
            }
        )
        # The extract is taken at EXTRACT_TAKEN_AT: later events are not in it.
        raw = raw.filter(pl.col("t") <= _epoch_seconds(EXTRACT_TAKEN_AT))
        return raw.select(
            pl.lit(record_ids).gather(pl.col("rec")).alias("custody_record_id"),
            _utc(pl.col("t")).alias("event_time"),
            _lookup(_EVENT_TYPES, pl.col("type")).alias("event_type"),
            _lookup(_DETAILS, pl.col("detail")).alias("detail"),
            _lookup(_NOTES, pl.col("note")).alias("note"),
        )


def _utc(seconds: pl.Expr) -> pl.Expr:
    return pl.from_epoch(seconds, time_unit="s").dt.replace_time_zone("UTC").cast(pl.Datetime("us", "UTC"))


def _lookup(labels: tuple[str, ...], codes: pl.Expr) -> pl.Expr:
    """Labels by code; code -1 is null (a negative index counts from the end)."""
    return pl.lit(pl.Series([*labels, None], dtype=pl.String)).gather(codes)


def _court_sitting(rng: _Rng, instant: I64) -> tuple[I64, I64]:
    """(leave for court, court appearance) as UTC seconds for the first court sitting
    after `instant`: the same day before SAME_DAY_COURT_BEFORE_HOUR local time, else
    the next day; no court on Sunday. The child leaves at least an hour after `instant`
    and appears at least 45 minutes after leaving."""
    n = instant.size
    local = instant + _uk_offset(instant)
    day = local // DAY
    day = day + ((local % DAY) >= SAME_DAY_COURT_BEFORE_HOUR * 3600)
    day = day + ((day + 3) % 7 == 6)  # 1970-01-01 was a Thursday; 6 is Sunday
    leave_local = day * DAY + (LEAVE_FOR_COURT_HOUR * HOUR + rng.uniform(0, LEAVE_FOR_COURT_SPREAD_MINUTES * MINUTE, n))
    court_local = day * DAY + (COURT_APPEARANCE_HOUR * HOUR + rng.uniform(0, COURT_APPEARANCE_SPREAD_HOURS * HOUR, n))
    leave = _local_to_utc((leave_local // 60 * 60).astype(np.int64))
    court = _local_to_utc((court_local // 60 * 60).astype(np.int64))
    leave = np.maximum(leave, instant + (HOUR + rng.uniform(0, HOUR, n)).astype(np.int64))
    court = np.maximum(court, leave + (45 * MINUTE + rng.uniform(0, HOUR, n)).astype(np.int64))
    return leave, court


def _clip(x: F64, low: float | F64, high: float | F64) -> F64:
    return np.minimum(np.maximum(x, low), high)


_FIRST_YEAR = FIRST_ARRIVAL_DATE.year
_YEARS = LAST_ARRIVAL_DATE.year - _FIRST_YEAR + 1


@dataclass
class _Carry:
    """What one chunk hands on to the next, so that the chunks read as one extract."""

    #: Person numbers used so far: a chunk's children are numbered after them.
    people: int = 0
    #: Records so far per (force, arrival year): the record-id sequence continues.
    seq: I64 = field(default_factory=lambda: np.zeros((len(FORCES), _YEARS), dtype=np.int64))
    #: Each force's s38(6) request and transfer rates, drawn in the first chunk.
    force_rates: tuple[F64, F64] | None = None


def _children(rng: _Rng, records: int) -> tuple[I64, I64, I64]:
    """(person index, arrival UTC seconds, date of birth as epoch day) per record."""
    counts = rng.g.geometric(1.0 / RECORDS_PER_CHILD, size=int(records / RECORDS_PER_CHILD) + 16)
    while counts.sum() < records:
        counts = np.concatenate([counts, rng.g.geometric(1.0 / RECORDS_PER_CHILD, size=16)])
    cum = np.cumsum(counts)
    people = int(np.searchsorted(cum, records)) + 1 if records else 0
    counts = counts[:people].astype(np.int64)
    if people:
        counts[-1] -= int(cum[people - 1]) - records
    person = np.repeat(np.arange(people, dtype=np.int64), counts)
    nth = np.arange(records, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)

    first_day_limit = _epoch_day(FIRST_ARRIVAL_DATE)
    last_day_limit = _epoch_day(LAST_ARRIVAL_DATE)
    years = np.asarray(list(ARRIVAL_YEAR_WEIGHTS), dtype=np.int64)
    year = years[rng.pick(ARRIVAL_YEAR_WEIGHTS, people)]
    year_start = np.asarray([_epoch_day(dt.date(int(y), 1, 1)) for y in range(1969, 2031)], dtype=np.int64)
    start = year_start[year - 1969]
    length = year_start[year - 1968] - start
    first_day = start + np.floor(rng.u(people) * length).astype(np.int64)

    ages = np.asarray(list(FIRST_RECORD_AGE_WEIGHTS), dtype=np.float64)
    # Kept a few days inside the year of age, so that day arithmetic never leaves 10-17.
    age_years = ages[rng.pick(FIRST_RECORD_AGE_WEIGHTS, people)] + rng.uniform(0.01, 0.99, people)
    age_days = np.floor(age_years * 365.2425).astype(np.int64)
    dob = first_day - age_days

    # A few more leap-day births: move the birthday to 29 February of the nearest leap
    # year, keeping the age at the first record, if that first record stays in range.
    leap_days = np.asarray([_epoch_day(dt.date(y, 2, 29)) if calendar.isleap(y) else 0 for y in range(1900, 2101)])
    dob_year = 1970 + np.floor(dob / 365.2425).astype(np.int64)
    leap_year = (dob_year + 2) // 4 * 4
    leap_dob = leap_days[leap_year - 1900]
    moved_first = leap_dob + age_days
    move = (
        rng.chance(EXTRA_LEAP_DAY_BIRTH_SHARE, people)
        & (moved_first >= first_day_limit)
        & (moved_first <= last_day_limit)
    )
    dob = np.where(move, leap_dob, dob)
    first_day = np.where(move, moved_first, first_day)

    # Later records of the same child: gaps from the first, before the 18th birthday
    # (18 years less a safety margin) and the end of the extract.
    limit = np.minimum(dob + int(18 * 365.2425) - 3, last_day_limit)
    gaps = np.maximum(1, np.ceil(rng.exponential(REPEAT_GAP_MEAN_DAYS, records))).astype(np.int64)
    gaps[nth == 0] = 0
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(counts) - counts], counts)
    day = first_day[person] + offset
    lim = limit[person]
    fallback = first_day[person] + np.floor(rng.u(records) * (lim - first_day[person] + 1)).astype(np.int64)
    day = np.where(day > lim, fallback, day)

    hour = rng.pick(ARRIVAL_HOUR_WEIGHTS, records)
    minute = np.floor(rng.u(records) * 60).astype(np.int64)
    arrival = _local_to_utc(day * DAY + hour * 3600 + minute * 60)
    return person, arrival, dob


def _detentions(rng: _Rng, records: int, carry: _Carry) -> tuple[pl.DataFrame, dict[str, npt.NDArray[np.generic]]]:
    """The detentions table, sorted by arrival, and the arrays the event plans need.
    Person numbers and record-id sequences continue from `carry`, which is updated."""
    person, arrival, dob = _children(rng, records)
    order = np.argsort(arrival, kind="stable")
    person, arrival = person[order], arrival[order]
    people = int(person.max(initial=-1)) + 1
    n = records

    # Per child.
    sex = rng.pick(SEX_WEIGHTS, people)
    ethnicity = rng.pick(ETHNICITY_WEIGHTS, people)
    looked_after = rng.chance(LOOKED_AFTER_SHARE, people)
    home_force = rng.pick(tuple(f[2] for f in FORCES), people)
    person_number = rng.g.permutation(people).astype(np.int64) + carry.people
    carry.people += people

    # Per record.
    dob_missing = rng.chance(MISSING_DOB_SHARE, n)
    appears_u18 = rng.chance(APPEARS_UNDER_18_SHARE, n)
    force = np.where(rng.chance(OTHER_FORCE_SHARE, n), rng.pick(tuple(f[2] for f in FORCES), n), home_force[person])
    suite_counts = np.asarray([len(f[3]) for f in FORCES], dtype=np.int64)
    suite_start = np.cumsum(suite_counts) - suite_counts
    suite = suite_start[force] + np.floor(rng.u(n) * suite_counts[force]).astype(np.int64)
    power = rng.pick(DETENTION_POWER_WEIGHTS, n)
    is_mha = np.isin(power, [_POWERS.index("mha_s136"), _POWERS.index("mha_s135")])

    arrival_day_local = (arrival + _uk_offset(arrival)) // DAY
    station_share = np.zeros(n)
    for until, share in reversed(POLICE_STATION_POS_SHARE):
        station_share = np.where(arrival_day_local < _epoch_day(until), share, station_share)
    pos = np.where(rng.chance(station_share, n), 0, 1 + rng.pick(OTHER_POS_WEIGHTS, n))
    pos = np.where(is_mha, pos, -1)

    offence = rng.pick(OFFENCE_CATEGORY_WEIGHTS, n)
    indictable_p = np.asarray([INDICTABLE_SHARE[o] for o in _OFFENCES])[offence]
    indictable = rng.chance(indictable_p, n)
    offence = np.where(is_mha, -1, offence)

    frame = pl.DataFrame(
        {
            "person": person_number[person],
            "dob": dob[person].astype(np.int32),
            "dob_missing": dob_missing,
            "appears": appears_u18,
            "sex": sex[person],
            "ethnicity": ethnicity[person],
            "looked_after": looked_after[person],
            "force": force,
            "suite": suite,
            "power": power,
            "t": arrival,
            "pos": pos,
            "offence": offence,
            "indictable": indictable,
            "is_mha": is_mha,
        }
    )
    forces = tuple(f[0] for f in FORCES)
    codes = tuple(f[1] for f in FORCES)
    suites = tuple(s for f in FORCES for s in f[3])
    year = pl.from_epoch(pl.col("t"), time_unit="s").dt.replace_time_zone("UTC").dt.convert_time_zone(UK_TZ).dt.year()
    frame = frame.with_columns(year.alias("year"))
    year_index = frame["year"].to_numpy().astype(np.int64) - _FIRST_YEAR
    assert year_index.size == 0 or (year_index.min() >= 0 and year_index.max() < _YEARS)
    cell = force * _YEARS + year_index
    # Numbered within (force, year) in arrival order, after the earlier chunks' records.
    base = carry.seq.ravel()[cell]
    carry.seq += np.bincount(cell, minlength=carry.seq.size).reshape(carry.seq.shape)
    frame = frame.with_columns(pl.Series("base", base)).with_columns(
        (pl.int_range(pl.len()).over("force", "year") + 1 + pl.col("base")).alias("seq")
    )
    table = frame.select(
        pl.format(
            "{}-{}-{}",
            _lookup(codes, pl.col("force")),
            pl.col("year"),
            pl.col("seq").cast(pl.String).str.zfill(6),
        ).alias("custody_record_id"),
        pl.format("P{}", (pl.col("person") + 1).cast(pl.String).str.zfill(8)).alias("person_id"),
        pl.when(~pl.col("dob_missing")).then(pl.col("dob").cast(pl.Date)).alias("date_of_birth"),
        pl.when(pl.col("dob_missing")).then(pl.col("appears")).alias("appears_under_18"),
        _lookup(tuple(SEX_WEIGHTS), pl.col("sex")).alias("sex"),
        _lookup(tuple(ETHNICITY_WEIGHTS), pl.col("ethnicity")).alias("ethnicity"),
        pl.col("looked_after"),
        _lookup(forces, pl.col("force")).alias("force"),
        # An MHA detention at a health place of safety is not in a custody suite.
        pl.when(~pl.col("is_mha") | (pl.col("pos") == 0)).then(_lookup(suites, pl.col("suite"))).alias("custody_suite"),
        _lookup(_POWERS, pl.col("power")).alias("detention_power"),
        _utc(pl.col("t")).alias("arrival_time"),
        _lookup(_POS, pl.col("pos")).alias("place_of_safety"),
        _lookup(_OFFENCES, pl.col("offence")).alias("offence_category"),
        pl.when(~pl.col("is_mha")).then(pl.col("indictable")).alias("indictable"),
    )
    facts: dict[str, npt.NDArray[np.generic]] = {
        "arrival": arrival,
        "power": power,
        "force": force,
        "offence": offence,
        "indictable": indictable,
        "dob": dob[person],
        "dob_missing": dob_missing,
        "appears_u18": appears_u18,
        "looked_after": looked_after[person],
    }
    return table, facts


def _events(rng: _Rng, facts: dict[str, npt.NDArray[np.generic]], record_ids: pl.Series, carry: _Carry) -> pl.DataFrame:
    arrival = facts["arrival"].astype(np.int64)
    power = facts["power"].astype(np.int64)
    n = arrival.size
    plan = _EventPlan(arrival)
    pw = {p: power == i for i, p in enumerate(_POWERS)}
    mha = pw["mha_s136"] | pw["mha_s135"]
    pace = ~mha
    court_held = pw["warrant"] | pw["bail_breach"] | pw["court_remand"]
    arrested = pw["pace_arrest"]
    indictable = facts["indictable"].astype(np.bool_) & pace
    offence = facts["offence"].astype(np.int64)
    s136a_day = _epoch_seconds(dt.datetime(2017, 12, 11, tzinfo=dt.UTC))  # GMT in December
    after_s136a = arrival >= s136a_day

    # ---- PACE-like detentions: the pre-charge part.
    auth = _clip(rng.lognormal(AUTHORISATION_MEDIAN_MINUTES * MINUTE, 0.6, n), MINUTE, 2 * HOUR)
    aa_req_p = pace & rng.chance(AA_REQUESTED_SHARE, n)
    aa_req = auth + _clip(rng.lognormal(AA_REQUEST_DELAY_MEDIAN_MINUTES * MINUTE, 1.0, n), 0, 10 * HOUR)
    aa_arr_p = aa_req_p & rng.chance(AA_ARRIVED_SHARE, n)
    sigma = 0.7
    aa_median = AA_ARRIVAL_MEAN_HOURS * HOUR / math.exp(sigma * sigma / 2)
    aa_arr = _clip(rng.lognormal(aa_median, sigma, n), aa_req + 15 * MINUTE, AA_ARRIVAL_MAX_HOURS * HOUR)
    welfare_p = pace & rng.chance(WELFARE_INFORMED_SHARE, n)
    welfare = auth + _clip(rng.lognormal(WELFARE_DELAY_MEDIAN_MINUTES * MINUTE, 1.0, n), 0, 12 * HOUR)

    decision = np.where(
        aa_arr_p,
        aa_arr + rng.lognormal(DECISION_AFTER_AA_MEDIAN_HOURS * HOUR, 0.6, n),
        auth + rng.lognormal(DECISION_NO_AA_MEDIAN_HOURS * HOUR, 0.8, n),
    )
    # PACE s41 clock: most long detentions are cut back; s42 for some indictable ones.
    over = (arrested | pw["other"]) & (decision > 24 * HOUR)
    under = over & rng.chance(OVER_24H_BROUGHT_UNDER_SHARE, n)
    decision = np.where(under, np.maximum(rng.uniform(18 * HOUR, 23.9 * HOUR, n), aa_arr + 20 * MINUTE), decision)
    s42_p = over & ~under & indictable & rng.chance(S42_EXTENSION_SHARE, n)
    s43_p = s42_p & rng.chance(S43_WARRANT_SHARE_OF_EXTENDED, n)
    decision = np.where(s42_p & ~s43_p, np.minimum(decision, rng.uniform(30 * HOUR, 36 * HOUR, n)), decision)
    decision = np.where(s43_p, np.minimum(np.maximum(decision, 37 * HOUR), 60 * HOUR), decision)
    decision = np.where(over & ~under & ~s42_p, np.minimum(decision, rng.uniform(24.5 * HOUR, 30 * HOUR, n)), decision)
    s42_at = rng.uniform(20 * HOUR, 23.8 * HOUR, n)
    s43_at = rng.uniform(33 * HOUR, 35.9 * HOUR, n)

    charged_p = arrested & rng.chance(CHARGED_SHARE_OF_ARRESTS, n)
    refused_p = charged_p & rng.chance(BAIL_REFUSED_SHARE, n)
    granted_p = charged_p & ~refused_p
    refused = decision + _clip(rng.lognormal(20 * MINUTE, 0.7, n), 2 * MINUTE, 2 * HOUR)
    granted = decision + _clip(rng.lognormal(15 * MINUTE, 0.6, n), 2 * MINUTE, 2 * HOUR)

    # ---- held for court: refused bail, or arrested on a warrant / for breach / remanded.
    refused_abs = arrival + refused.astype(np.int64)
    leave_r, court_r = _court_sitting(rng, refused_abs)
    leave_c, court_c = _court_sitting(rng, arrival + auth.astype(np.int64))
    leave = np.where(court_held, leave_c - arrival, leave_r - arrival).astype(np.float64)
    court = np.where(court_held, court_c - arrival, court_r - arrival).astype(np.float64)

    # ---- s38(6): the local authority, transfer, certificate.
    age_at_refusal = (refused_abs / DAY - facts["dob"].astype(np.float64)) / 365.2425
    juvenile_limit = np.where(refused_abs >= _epoch_seconds(dt.datetime(2015, 10, 26, tzinfo=dt.UTC)), 18, 17)
    juvenile = np.where(facts["dob_missing"].astype(np.bool_), facts["appears_u18"], age_at_refusal < juvenile_limit)
    force = facts["force"].astype(np.int64)
    # A force keeps its rates over the whole extract: the first chunk's draws.
    rates = (rng.uniform(*LA_REQUEST_RATE_RANGE, len(FORCES)), rng.uniform(*LA_TRANSFER_RATE_RANGE, len(FORCES)))
    if carry.force_rates is None:
        carry.force_rates = rates
    request_rate = carry.force_rates[0][force]
    transfer_rate = carry.force_rates[1][force]
    req_p = refused_p & rng.chance(np.where(juvenile, request_rate, NOT_JUVENILE_REQUEST_SHARE), n)
    secure_p = np.asarray([SECURE_REQUEST_SHARE[o] for o in _OFFENCES])[np.maximum(offence, 0)]
    secure = rng.chance(secure_p, n)
    req_detail = np.where(secure, _DETAIL_CODE["secure"], _DETAIL_CODE["non_secure"]).astype(np.int64)
    moved_p = req_p & rng.chance(transfer_rate, n)
    resp_p = req_p & (moved_p | rng.chance(LA_RESPONSE_SHARE, n))
    req = np.minimum(refused + _clip(rng.lognormal(40 * MINUTE, 0.9, n), 2 * MINUTE, 8 * HOUR), leave - 30 * MINUTE)
    resp = np.minimum(req + _clip(rng.lognormal(1.2 * HOUR, 0.8, n), 2 * MINUTE, 10 * HOUR), leave - 20 * MINUTE)
    secure_resp = np.asarray(_codes(tuple(LA_RESPONSE_WEIGHTS["secure"]), _DETAIL_CODE))[
        rng.pick(LA_RESPONSE_WEIGHTS["secure"], n)
    ]
    open_resp = np.asarray(_codes(tuple(LA_RESPONSE_WEIGHTS["non_secure"]), _DETAIL_CODE))[
        rng.pick(LA_RESPONSE_WEIGHTS["non_secure"], n)
    ]
    resp_detail = np.where(moved_p, _DETAIL_CODE["accepted"], np.where(secure, secure_resp, open_resp))
    resp_note = np.full(n, -1, dtype=np.int64)
    choose = rng.u(n)
    for code, texts in LA_RESPONSE_NOTES.items():
        text_codes = _codes(texts, _NOTE_CODE)
        pick = text_codes[(choose * len(texts)).astype(np.int64)]
        resp_note = np.where(resp_detail == _DETAIL_CODE[code], pick, resp_note)
    resp_note = np.where(rng.chance(LA_RESPONSE_NOTE_SHARE, n), resp_note, -1)
    moved = np.minimum(resp + _clip(rng.lognormal(2 * HOUR, 0.6, n), 10 * MINUTE, 8 * HOUR), leave - 10 * MINUTE)

    stayed = refused_p & ~moved_p
    cert_p = stayed & rng.chance(CERTIFICATE_SHARE, n)
    cert_no_secure = rng.chance(CERTIFICATE_NO_SECURE_SHARE, n)
    cert_detail = np.where(cert_no_secure, _DETAIL_CODE["no_secure_accommodation"], _DETAIL_CODE["impracticable"])
    cert_note = np.where(
        cert_no_secure,
        _codes(tuple(NO_SECURE_NOTES), _NOTE_CODE)[rng.pick(NO_SECURE_NOTES, n)],
        _codes(tuple(IMPRACTICABLE_NOTES), _NOTE_CODE)[rng.pick(IMPRACTICABLE_NOTES, n)],
    )
    cert_base = np.where(resp_p, resp, np.where(req_p, req, refused))
    cert = np.minimum(cert_base + _clip(rng.lognormal(40 * MINUTE, 0.8, n), 5 * MINUTE, 6 * HOUR), leave - 5 * MINUTE)
    court_p = (stayed & rng.chance(COURT_APPEARANCE_SHARE, n)) | (
        moved_p & rng.chance(COURT_APPEARANCE_SHARE_TRANSFERRED, n)
    )
    court_p |= court_held & rng.chance(COURT_APPEARANCE_SHARE, n)
    cert_court_p = cert_p & court_p & rng.chance(CERTIFICATE_TO_COURT_SHARE, n)

    # ---- the end of detention and the release.
    uncharged_codes = _codes(tuple(UNCHARGED_RELEASE_WEIGHTS), _DETAIL_CODE)[rng.pick(UNCHARGED_RELEASE_WEIGHTS, n)]
    other_codes = _codes(tuple(OTHER_POWER_RELEASE_WEIGHTS), _DETAIL_CODE)[rng.pick(OTHER_POWER_RELEASE_WEIGHTS, n)]
    after_decision = decision + _clip(rng.lognormal(20 * MINUTE, 0.6, n), 2 * MINUTE, 3 * HOUR)
    after_bail = granted + _clip(rng.lognormal(25 * MINUTE, 0.6, n), 5 * MINUTE, 3 * HOUR)
    end = np.select(
        [court_held, moved_p, refused_p, granted_p],
        [leave, moved, leave, after_bail],
        default=after_decision,
    )
    release_detail = np.select(
        [court_held, moved_p, refused_p, granted_p, arrested],
        [
            np.full(n, _DETAIL_CODE["to_court"]),
            np.full(n, _DETAIL_CODE["to_la"]),
            np.full(n, _DETAIL_CODE["to_court"]),
            np.full(n, _DETAIL_CODE["bail"]),
            uncharged_codes,
        ],
        default=other_codes,
    ).astype(np.int64)
    # Everything before the release: the AA and welfare calls fit into short detentions.
    aa_req = np.maximum(np.minimum(aa_req, end - 30 * MINUTE), auth)
    welfare = np.maximum(np.minimum(welfare, end - 30 * MINUTE), auth)
    aa_arr = np.where(court_held, np.minimum(aa_arr, end - 20 * MINUTE), aa_arr)
    aa_arr_p = aa_arr_p & ~(court_held & (aa_arr <= aa_req))
    decision = np.where(court_held, end - 30 * MINUTE, decision)

    # ---- MHA detentions.
    s136 = pw["mha_s136"]
    consult_share = np.where(after_s136a, MHA_CONSULTATION_SHARE_AFTER_2017, MHA_CONSULTATION_SHARE_BEFORE)
    consult_p = s136 & rng.chance(consult_share, n)
    consult = -_clip(rng.lognormal(25 * MINUTE, 0.7, n), 5 * MINUTE, 3 * HOUR)
    consultee = _codes(tuple(MHA_CONSULTEE_WEIGHTS), _DETAIL_CODE)[rng.pick(MHA_CONSULTEE_WEIGHTS, n)]
    assess_p = mha & rng.chance(MHA_ASSESSMENT_SHARE, n)
    assess = rng.lognormal(MHA_ASSESSMENT_MEDIAN_HOURS * HOUR, 0.75, n)
    overrun = after_s136a & (assess > 24 * HOUR)
    mha_ext_p = mha & overrun & rng.chance(MHA_EXTENSION_SHARE_OF_OVERRUNS, n)
    cut = overrun & ~mha_ext_p & rng.chance(MHA_OVERRUN_BROUGHT_UNDER_SHARE, n)
    assess = np.where(mha_ext_p, np.minimum(assess, rng.uniform(26 * HOUR, 35.5 * HOUR, n)), assess)
    assess = np.where(cut, rng.uniform(12 * HOUR, 23.5 * HOUR, n), assess)
    assess = np.where(overrun & ~mha_ext_p & ~cut, np.minimum(assess, 34 * HOUR), assess)
    old_over = ~after_s136a & (assess > 72 * HOUR)
    old_cut = old_over & rng.chance(MHA_OVERRUN_BROUGHT_UNDER_SHARE, n)
    assess = np.where(old_cut, rng.uniform(48 * HOUR, 71.5 * HOUR, n), np.minimum(assess, 80 * HOUR))
    mha_ext_at = rng.uniform(18 * HOUR, 23.8 * HOUR, n)
    # Release soon after the assessment, within the period unless the detention overran.
    limit = np.select(
        [~after_s136a & (assess < 72 * HOUR), mha_ext_p, assess < 24 * HOUR],
        [np.full(n, 72 * HOUR), np.full(n, 36 * HOUR), np.full(n, 24 * HOUR)],
        default=np.inf,
    )
    mha_end = np.where(
        assess_p,
        np.minimum(assess + _clip(rng.lognormal(45 * MINUTE, 0.7, n), 5 * MINUTE, 6 * HOUR), limit - MINUTE),
        np.minimum(rng.lognormal(8 * HOUR, 0.6, n), np.where(after_s136a, 23.9 * HOUR, 70 * HOUR)),
    )
    mha_end = np.maximum(mha_end, np.where(assess_p, assess, 0))
    mha_release = _codes(tuple(MHA_RELEASE_WEIGHTS), _DETAIL_CODE)[rng.pick(MHA_RELEASE_WEIGHTS, n)]
    end = np.where(mha, mha_end, end)
    release_detail = np.where(mha, mha_release, release_detail)
    release_p = ~rng.chance(RELEASE_MISSING_SHARE, n)

    # ---- strip searches, interviews and who was told (contract v1.1): drawn from their own
    # stream, spawned from `rng` without drawing from it, so every other event is as before.
    sg = rng.spawn()
    search_p = pace & sg.chance(STRIP_SEARCH_SHARE, n)
    search_detail = _codes(tuple(STRIP_SEARCH_DETAIL_WEIGHTS), _DETAIL_CODE)[sg.pick(STRIP_SEARCH_DETAIL_WEIGHTS, n)]
    adult_there = aa_arr_p & np.isin(search_detail, _codes(("aa_present", "aa_declined"), _DETAIL_CODE))
    search = np.where(
        adult_there,
        aa_arr + sg.uniform(5 * MINUTE, 30 * MINUTE, n),
        auth + _clip(sg.lognormal(40 * MINUTE, 0.7, n), 5 * MINUTE, 4 * HOUR),
    )
    search = np.maximum(np.minimum(search, end - 5 * MINUTE), auth)

    interview_p = (arrested | pw["other"]) & sg.chance(INTERVIEW_SHARE, n)
    length1 = _clip(sg.lognormal(35 * MINUTE, 0.5, n), 8 * MINUTE, 3 * HOUR)
    start1 = np.where(
        aa_arr_p,
        aa_arr + _clip(sg.lognormal(30 * MINUTE, 0.6, n), 5 * MINUTE, 3 * HOUR),
        auth + _clip(sg.lognormal(2 * HOUR, 0.6, n), 20 * MINUTE, 8 * HOUR),
    )
    start1 = np.minimum(start1, decision - length1 - 10 * MINUTE)  # interviews come before the decision
    interview_p &= start1 > auth
    end1 = start1 + length1
    start2 = end1 + _clip(sg.lognormal(90 * MINUTE, 0.5, n), 20 * MINUTE, 6 * HOUR)
    end2 = start2 + _clip(sg.lognormal(25 * MINUTE, 0.5, n), 5 * MINUTE, 2 * HOUR)
    second_p = interview_p & sg.chance(SECOND_INTERVIEW_SHARE, n) & (end2 < decision - 5 * MINUTE)
    interview_codes = _codes(tuple(INTERVIEW_DETAIL_WEIGHTS), _DETAIL_CODE)
    detail1 = interview_codes[sg.pick(INTERVIEW_DETAIL_WEIGHTS, n)]
    detail2 = interview_codes[sg.pick(INTERVIEW_DETAIL_WEIGHTS, n)]
    ended1_p = interview_p & ~sg.chance(INTERVIEW_END_MISSING_SHARE, n)
    ended2_p = second_p & ~sg.chance(INTERVIEW_END_MISSING_SHARE, n)
    left_during = interview_p & aa_arr_p & sg.chance(AA_LEFT_DURING_INTERVIEW_SHARE, n)
    aa_left = np.where(
        left_during,
        start1 + length1 * sg.uniform(0.2, 0.8, n),
        np.where(interview_p, np.where(second_p, end2, end1), aa_arr)
        + _clip(sg.lognormal(20 * MINUTE, 0.6, n), 2 * MINUTE, 2 * HOUR),
    )
    aa_left_p = (left_during | (aa_arr_p & sg.chance(AA_LEFT_RECORDED_SHARE, n))) & (aa_left > aa_arr)
    aa_left_p &= aa_left < end - MINUTE

    welfare_detail = np.where(
        facts["looked_after"].astype(np.bool_),
        _codes(tuple(LOOKED_AFTER_WELFARE_WEIGHTS), _DETAIL_CODE)[sg.pick(LOOKED_AFTER_WELFARE_WEIGHTS, n)],
        _codes(tuple(WELFARE_DETAIL_WEIGHTS), _DETAIL_CODE)[sg.pick(WELFARE_DETAIL_WEIGHTS, n)],
    ).astype(np.int64)

    # ---- reviews (PACE s40) while the PACE-like detention lasts: (records, times, details).
    reviews: list[tuple[I64, F64, I64]] = []
    rec = np.flatnonzero(pace).astype(np.int64)
    m = rec.size
    first_late = ~rng.chance(FIRST_REVIEW_ON_TIME_SHARE, m)
    review = auth[rec] + np.where(
        first_late,
        6 * HOUR + rng.exponential(LATE_REVIEW_MEAN_MINUTES * MINUTE, m),
        6 * HOUR - rng.uniform(0, 90 * MINUTE, m),
    )
    for nth_review in range(MAX_REVIEWS):
        if nth_review:
            late = ~rng.chance(LATER_REVIEW_ON_TIME_SHARE, m)
            review = review + np.where(
                late,
                9 * HOUR + rng.exponential(LATE_REVIEW_MEAN_MINUTES * MINUTE, m),
                9 * HOUR - rng.uniform(0, 120 * MINUTE, m),
            )
        detained = review < end[rec]
        rec, review = rec[detained], review[detained]
        m = rec.size
        if not m:
            break
        after_charge = charged_p[rec] & (review >= decision[rec])
        kind = np.where(after_charge, _DETAIL_CODE["post_charge"], _DETAIL_CODE["pre_charge"])
        kind = np.where(rng.chance(POSTPONED_REVIEW_SHARE, m), _DETAIL_CODE["postponed"], kind)
        reviews.append((rec, review, kind.astype(np.int64)))

    # ---- cells (Code C 8.8).
    cell_p = pace & rng.chance(CELL_PLACED_SHARE, n)
    reason_labels = tuple(CELL_REASON_WEIGHTS)
    reason1 = _codes(reason_labels, _DETAIL_CODE)[rng.pick(CELL_REASON_WEIGHTS, n)]
    reason2 = _codes(reason_labels, _DETAIL_CODE)[rng.pick(CELL_REASON_WEIGHTS, n)]
    reason2 = np.where(rng.chance(SAME_CELL_REASON_SHARE, n), reason1, reason2)
    placed1 = np.minimum(auth + _clip(rng.lognormal(15 * MINUTE, 0.7, n), MINUTE, 2 * HOUR), (auth + end) / 2)
    left1 = np.where(aa_arr_p & ~court_held, aa_arr + rng.uniform(10 * MINUTE, 40 * MINUTE, n),
                     decision - rng.uniform(30 * MINUTE, 90 * MINUTE, n))  # fmt: skip
    left1 = np.maximum(np.minimum(left1, end - 5 * MINUTE), placed1 + MINUTE)
    placed2 = left1 + _clip(rng.lognormal(90 * MINUTE, 0.4, n), 30 * MINUTE, 4 * HOUR)
    left2 = end - rng.uniform(5 * MINUTE, 20 * MINUTE, n)
    cell2_p = cell_p & rng.chance(SECOND_CELL_SHARE, n) & (placed2 < left2 - 30 * MINUTE)

    # ---- the plan, in the order events happen when times tie.
    plan.add("mha_consultation", consult, consult_p, consultee)
    plan.add("detention_authorised", auth, pace)
    plan.add("cell_placed", placed1, cell_p, reason1)
    plan.add("aa_requested", aa_req, aa_req_p)
    plan.add("welfare_informed", welfare, welfare_p, welfare_detail)
    plan.add("aa_arrived", aa_arr, aa_arr_p)
    plan.add("strip_search", search, search_p, search_detail)
    plan.add("interview_started", start1, interview_p, detail1)
    plan.add("aa_left", aa_left, aa_left_p & left_during)
    plan.add("interview_ended", end1, ended1_p)
    plan.add("interview_started", start2, second_p, detail2)
    plan.add("interview_ended", end2, ended2_p)
    plan.add("aa_left", aa_left, aa_left_p & ~left_during)
    plan.add("cell_left", left1, cell_p)
    plan.add("extension_authorised", s42_at, s42_p, "s42")
    plan.add("extension_authorised", s43_at, s43_p, "s43")
    plan.add("cell_placed", placed2, cell2_p, reason2)
    for rec, review, codes in reviews:
        plan.add_at("review", rec, review, codes)
    plan.add("charged", decision, charged_p)
    plan.add("bail_refused", refused, refused_p)
    plan.add("bail_granted", granted, granted_p)
    plan.add("la_requested", req, req_p, req_detail)
    plan.add("la_response", resp, resp_p, resp_detail.astype(np.int64), resp_note)
    plan.add("transferred_to_la", moved, moved_p, req_detail)
    plan.add("certificate", cert, cert_p, cert_detail.astype(np.int64), cert_note)
    plan.add("mha_extension", mha_ext_at, mha_ext_p)
    plan.add("mha_assessment_completed", assess, assess_p)
    plan.add("cell_left", left2, cell2_p)
    plan.add("released", end, release_p, release_detail)
    plan.add("court_appearance", court, court_p)
    plan.add("certificate_to_court", court, cert_court_p)
    return plan.frame(record_ids)


def _build(records: int, rng: _Rng, carry: _Carry) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One chunk of `records` records, as written (enums as strings); updates `carry`."""
    detentions, facts = _detentions(rng, records, carry)
    events = _events(rng, facts, detentions["custody_record_id"], carry)
    return detentions.cast(_as_written("detentions")), events.cast(_as_written("events"))


def _as_written(table: str) -> pl.Schema:
    """The contract schema as written to files: enums as plain strings."""
    return pl.Schema(
        {name: pl.String() if isinstance(dtype, pl.Enum) else dtype for name, dtype in polars_schema(table).items()}
    )


#: Records generated at a time. Output is a function of (records, seed) only because
#: this is a constant, not a machine-dependent figure: keep it fixed, since changing
#: it changes every set of more records than it. Half a million records (about 5.3
#: million events) take about 1.3 GB at the peak.
CHUNK_RECORDS = 500_000
#: Compression of the temporary per-chunk Parquet files (read once, then deleted).
_PART_COMPRESSION: Literal["lz4"] = "lz4"
#: Rows per row group when the chunks are joined into one Parquet file: fixed, so
#: that the joined file is the same bytes whatever the number of threads.
_ROW_GROUP_ROWS = 512 * 512

_TABLES = ("detentions", "events")


def _write_csv(frame: pl.DataFrame, path: Path, *, header: bool) -> None:
    """Times as ISO 8601 with the UK offset; without `header`, rows are appended."""
    local = frame.with_columns(pl.col(pl.Datetime("us", "UTC")).dt.convert_time_zone(UK_TZ))
    with path.open("wb" if header else "ab") as handle:
        local.write_csv(handle, include_header=header, datetime_format="%Y-%m-%dT%H:%M:%S%:z", date_format="%Y-%m-%d")


def _write_chunk(records: int, rng: _Rng, carry: _Carry, write: Callable[[str, pl.DataFrame], None]) -> dict[str, int]:
    """Build one chunk, `write(table, frame)` both tables and return its counts. The
    frames are freed on return, so only one chunk is held in memory at a time."""
    detentions, events = _build(records, rng, carry)
    write("detentions", detentions)
    write("events", events)
    return {"records": detentions.height, "events": events.height, "children": detentions["person_id"].n_unique()}


def generate_record_set(
    out_dir: Path,
    records: int,
    *,
    seed: int = 0,
    fmt: Literal["parquet", "csv"] = "parquet",
    chunk_records: int = CHUNK_RECORDS,
) -> dict[str, int]:
    """Write a synthetic record set of `records` custody records of children to
    `out_dir/detentions.<fmt>` and `out_dir/events.<fmt>`, in the contract's form.

    The records are made `chunk_records` at a time (CHUNK_RECORDS; only tests change
    it), so memory is bounded whatever `records` is. Chunk k draws from its own random
    stream of (seed, k); the first chunk's stream is the seed itself, so a set of at
    most `chunk_records` records is exactly one chunk, as if unchunked. A child's
    records are all in one chunk; person numbers and the record-id sequences per force
    and year continue across chunks, so ids are unique over the set; each force keeps
    the s38(6) rates drawn in the first chunk. Detentions are sorted by arrival *within
    each chunk* of `chunk_records` rows; events are grouped by record in the same order
    and in time order within a record.

    The same `records`, `seed` and `fmt` give byte-identical files. Parquet holds UTC
    instants, dates, booleans and enum values as strings; CSV holds times as ISO 8601
    with the UK offset (`2019-10-27T01:30:00+01:00`). Parquet of several chunks is
    written to temporary files in `out_dir`, then streamed into one file. Returns the
    counts of records, events and children (distinct `person_id`).
    """
    if records < 0:
        raise ValueError(f"records must be 0 or more, not {records}")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    if chunk_records < 1:
        raise ValueError(f"chunk_records must be 1 or more, not {chunk_records}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = {name: out_dir / f"{name}.{fmt}" for name in _TABLES}
    sizes = [min(chunk_records, records - start) for start in range(0, records, chunk_records)] or [0]
    carry = _Carry()
    totals = {"records": 0, "events": 0, "children": 0}

    def generate(write: Callable[[int, str, pl.DataFrame], None]) -> None:
        for k, size in enumerate(sizes):
            counts = _write_chunk(size, _Rng.for_chunk(seed, k), carry, partial(write, k))
            for key, value in counts.items():
                totals[key] += value  # person ids of different chunks are disjoint

    if fmt == "csv":
        generate(lambda k, name, frame: _write_csv(frame, finals[name], header=k == 0))
    elif len(sizes) == 1:
        generate(lambda _, name, frame: frame.write_parquet(finals[name]))
    else:
        with tempfile.TemporaryDirectory(prefix=".generate-", dir=out_dir) as temp:
            parts = {name: [Path(temp) / f"{name}-{k:06d}.parquet" for k in range(len(sizes))] for name in _TABLES}
            generate(lambda k, name, frame: frame.write_parquet(parts[name][k], compression=_PART_COMPRESSION))
            for name in _TABLES:
                pl.scan_parquet(parts[name]).sink_parquet(
                    finals[name], compression="zstd", row_group_size=_ROW_GROUP_ROWS, maintain_order=True
                )
    return totals
