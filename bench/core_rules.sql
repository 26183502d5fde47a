-- The three core s38(6) rules (rules/S38-REQUEST.yaml, S38-TRANSFER.yaml, S38-CERTIFICATE.yaml)
-- written by hand in DuckDB SQL: reads a generated record set's detentions.parquet and
-- events.parquet and writes findings.parquet with the rows `custody check --formats parquet`
-- writes with a rule folder holding only those three rules: the same columns, outcomes,
-- messages, evidence JSON, rule versions, citations and trigger instants, in the same order
-- (by child: person, arrival, custody record; then rule id; then refusal of bail).
--
-- Placeholders filled in by bench/duckdb_core.py: {detentions}, {events}, {findings}.
-- It assumes clean input (typed Parquet as `custody generate` writes it); the tool also
-- validates every value and reports what it cannot use (and then answers cannot_assess
-- where a rule needed it), which this query does not: such records are left out of the
-- comparison. Events with no time are not used here (the tool reports them unusable).
--
-- Semantics, as in the rule files:
-- * one finding per refusal of bail (`occasions: bail_refused`): each instant of a record's
--   `bail_refused` events is an occasion (a refusal entered twice at the same instant is one);
--   its window runs from that refusal (inclusive) up to the record's next refusal
--   (exclusive; the last is open-ended); `occasion_*` values are taken over the
--   events inside the window (first time, its detail, count), the others over the whole
--   record (charged_at, la_requested_at/_detail: the first; released_last_at: the last);
--   a record with no refusal has no finding; `trigger_at` is the refusal's instant;
-- * the version of the law is chosen by the refusal: from 1986-01-01 a juvenile is under 17,
--   from 2015-10-26 00:00 UK time under 18; a refusal before 1986 has no finding;
-- * in scope: detention_power not mha_s136/mha_s135 (warrant, bail_breach, court_remand,
--   other are in), the record's first 'charged' event at or before the refusal (a refusal
--   before the first charge has no finding, but still numbers the refusals and ends the
--   window of the one before it), a juvenile at the refusal, and no bail granted after the
--   refusal, anywhere later on the record (the first `bail_granted`, or the first `released`
--   with detail `bail`, at or after it) within 2 hours of it (exactly 2 hours still removes
--   the finding);
-- * a request (S38-REQUEST) or the window's certificate (S38-TRANSFER, S38-CERTIFICATE)
--   recorded only after the first `released` at or after the refusal -> cannot_assess;
-- * age in whole years on the UK calendar date of the refusal (attained at 00:00 UK time on
--   the birthday; a 29 February birthday is reached on 1 March in a common year); with no
--   date of birth, appears_under_18 decides (false: not a juvenile; true: a juvenile under
--   the 18 limit, unknown under the 17 limit); a scope condition unknown and none false
--   (the age; or no detention power, which the tool also reports in data quality) ->
--   cannot_assess, naming what is not recorded;
-- * S38-REQUEST: no request on the record -> breach; the first request on or after the next
--   refusal -> breach (saying it was made after that); a request in the window -> compliant;
--   else (a request earlier in the episode) compliant;
-- * S38-TRANSFER: a move is `transferred_to_la`, or `released` with detail `to_la`, in the
--   window; neither move nor certificate in the window -> breach (saying when bail was
--   granted, if it was); else compliant (move, then release to_la, then certificate);
-- * S38-CERTIFICATE: only refusals with no move in the window; a certificate in the window
--   -> compliant, else breach;
-- * messages: UK local times as '2015-07-01 23:05 BST', durations as '2h 00m' (whole minutes,
--   and ' 01s' after them when there are whole seconds), a missing value as 'not recorded'; evidence: UK-offset ISO times, keys in the
--   rule's `evidence:` order;
-- * rows in the tool's order: by child (person, arrival, custody record), rule id, refusal.

SET TimeZone = 'UTC';

-- The UK offset from UTC of an instant, in minutes (0 GMT, 60 BST, 120 BDST).
CREATE OR REPLACE MACRO uk_offset(t) AS (epoch_us(timezone('Europe/London', t)) - epoch_us(t)) // 60000000;

-- An instant in a message: UK local time with its zone abbreviation.
CREATE OR REPLACE MACRO uk_text(t) AS coalesce(
  strftime(timezone('Europe/London', t), '%Y-%m-%d %H:%M ')
    || CASE uk_offset(t) WHEN 0 THEN 'GMT' WHEN 60 THEN 'BST' WHEN 120 THEN 'BDST' END,
  'not recorded');

-- An instant in the evidence: ISO 8601 with the UK offset.
CREATE OR REPLACE MACRO uk_iso(t) AS
  strftime(timezone('Europe/London', t), '%Y-%m-%dT%H:%M:%S')
    || CASE uk_offset(t) WHEN 0 THEN '+00:00' WHEN 60 THEN '+01:00' WHEN 120 THEN '+02:00' END;

-- The elapsed time from a to b in whole seconds (truncated), and as '5h 07m' in a message,
-- or '2h 00m 01s' when it has seconds.
CREATE OR REPLACE MACRO span_seconds(a, b) AS (epoch_us(b) - epoch_us(a)) // 1000000;
CREATE OR REPLACE MACRO span_text(a, b) AS coalesce(
  CASE WHEN span_seconds(a, b) < 0 THEN '-' ELSE '' END
    || (abs(span_seconds(a, b)) // 3600)::VARCHAR || 'h '
    || lpad((abs(span_seconds(a, b)) // 60 % 60)::VARCHAR, 2, '0') || 'm'
    || CASE WHEN abs(span_seconds(a, b)) % 60 <> 0
            THEN ' ' || lpad((abs(span_seconds(a, b)) % 60)::VARCHAR, 2, '0') || 's' ELSE '' END,
  'not recorded');

-- Bail granted at g, after a refusal at t, ends the duty if at most 2 hours later
-- (bail_reconsidered_within: a later grant leaves the finding).
CREATE OR REPLACE MACRO granted_in_time(g, t) AS epoch_us(g) - epoch_us(t) <= 7200000000;

COPY (
  -- Only records where bail was refused can be in scope: read their events alone, and only
  -- the types the three rules read.
  WITH refused AS (
    SELECT DISTINCT custody_record_id FROM read_parquet('{events}')
    WHERE event_type = 'bail_refused' AND event_time IS NOT NULL
  ),
  ev AS MATERIALIZED (
    SELECT custody_record_id, event_time, event_type, detail
    FROM read_parquet('{events}') SEMI JOIN refused USING (custody_record_id)
    WHERE event_time IS NOT NULL
      AND event_type IN ('charged', 'bail_refused', 'bail_granted', 'la_requested', 'transferred_to_la',
                         'certificate', 'released')
  ),
  -- Facts of the whole record.
  record_facts AS (
    SELECT custody_record_id,
      min(event_time) FILTER (WHERE event_type = 'charged') AS charged_at,
      min(event_time) FILTER (WHERE event_type = 'la_requested') AS la_requested_at,
      arg_min_null(detail, event_time) FILTER (WHERE event_type = 'la_requested') AS la_requested_detail,
      max(event_time) FILTER (WHERE event_type = 'released') AS released_last_at
    FROM ev WHERE event_type IN ('charged', 'la_requested', 'released')
    GROUP BY custody_record_id
  ),
  -- One row per refusal of bail (per instant: a refusal entered twice at the same instant is
  -- one): its number on the record and the next refusal's instant.
  occasions AS (
    SELECT custody_record_id, occasion_at,
      row_number() OVER w AS occasion_number,
      lead(occasion_at) OVER w AS occasion_ends_at
    FROM (SELECT DISTINCT custody_record_id, event_time AS occasion_at FROM ev WHERE event_type = 'bail_refused')
    WINDOW w AS (PARTITION BY custody_record_id ORDER BY occasion_at)
  ),
  -- Facts of each refusal's window: the events from it up to the next refusal.
  window_facts AS (
    SELECT o.custody_record_id, o.occasion_number,
      min(e.event_time) FILTER (WHERE e.event_type = 'la_requested') AS occ_la_requested_at,
      arg_min_null(e.detail, e.event_time) FILTER (WHERE e.event_type = 'la_requested') AS occ_la_requested_detail,
      count(*) FILTER (WHERE e.event_type = 'la_requested') AS occ_la_requested_count,
      min(e.event_time) FILTER (WHERE e.event_type = 'bail_granted') AS occ_bail_granted_at,
      min(e.event_time) FILTER (WHERE e.event_type = 'released' AND e.detail = 'bail') AS occ_released_bail_at,
      min(e.event_time) FILTER (WHERE e.event_type = 'released' AND e.detail = 'to_la') AS occ_released_to_la_at,
      count(*) FILTER (WHERE e.event_type = 'released' AND e.detail = 'to_la') AS occ_released_to_la_count,
      min(e.event_time) FILTER (WHERE e.event_type = 'transferred_to_la') AS occ_transferred_to_la_at,
      arg_min_null(e.detail, e.event_time) FILTER (WHERE e.event_type = 'transferred_to_la') AS occ_transferred_to_la_detail,
      count(*) FILTER (WHERE e.event_type = 'transferred_to_la') AS occ_transferred_to_la_count,
      min(e.event_time) FILTER (WHERE e.event_type = 'certificate') AS occ_certificate_at,
      arg_min_null(e.detail, e.event_time) FILTER (WHERE e.event_type = 'certificate') AS occ_certificate_detail,
      count(*) FILTER (WHERE e.event_type = 'certificate') AS occ_certificate_count
    FROM occasions o JOIN ev e
      ON e.custody_record_id = o.custody_record_id
     AND e.event_time >= o.occasion_at
     AND (o.occasion_ends_at IS NULL OR e.event_time < o.occasion_ends_at)
    WHERE e.event_type IN ('la_requested', 'bail_granted', 'released', 'transferred_to_la', 'certificate')
    GROUP BY o.custody_record_id, o.occasion_number
  ),
  -- Facts of the events from each refusal on, to the end of the record (past the next refusal).
  next_facts AS (
    SELECT o.custody_record_id, o.occasion_number,
      min(e.event_time) FILTER (WHERE e.event_type = 'bail_granted') AS next_bail_granted_at,
      min(e.event_time) FILTER (WHERE e.event_type = 'released' AND e.detail = 'bail') AS next_released_bail_at,
      min(e.event_time) FILTER (WHERE e.event_type = 'released') AS next_released_at
    FROM occasions o JOIN ev e ON e.custody_record_id = o.custody_record_id AND e.event_time >= o.occasion_at
    WHERE e.event_type IN ('bail_granted', 'released')
    GROUP BY o.custody_record_id, o.occasion_number
  ),
  refusals AS (
    SELECT d.person_id, d.custody_record_id, d.arrival_time, d.detention_power, d.date_of_birth,
      d.appears_under_18, r.charged_at, r.la_requested_at, r.la_requested_detail, r.released_last_at,
      o.occasion_at, o.occasion_number, o.occasion_ends_at,
      w.occ_la_requested_at, w.occ_la_requested_detail, coalesce(w.occ_la_requested_count, 0) AS occ_la_requested_count,
      w.occ_bail_granted_at, w.occ_released_bail_at,
      w.occ_released_to_la_at, coalesce(w.occ_released_to_la_count, 0) AS occ_released_to_la_count,
      w.occ_transferred_to_la_at, w.occ_transferred_to_la_detail,
      coalesce(w.occ_transferred_to_la_count, 0) AS occ_transferred_to_la_count,
      w.occ_certificate_at, w.occ_certificate_detail, coalesce(w.occ_certificate_count, 0) AS occ_certificate_count,
      n.next_bail_granted_at, n.next_released_bail_at, n.next_released_at,
      CAST(timezone('Europe/London', o.occasion_at) AS DATE) AS refused_day,
      CASE WHEN o.occasion_at >= TIMESTAMPTZ '2015-10-26 00:00:00+00' THEN 18 ELSE 17 END AS age_limit
    FROM occasions o
      JOIN read_parquet('{detentions}') d USING (custody_record_id)
      JOIN record_facts r USING (custody_record_id)
      LEFT JOIN window_facts w USING (custody_record_id, occasion_number)
      LEFT JOIN next_facts n USING (custody_record_id, occasion_number)
    WHERE r.charged_at IS NOT NULL
      -- The first charge at or before the refusal: a refusal before it is not after charge.
      AND r.charged_at <= o.occasion_at
      AND o.occasion_at >= TIMESTAMPTZ '1986-01-01 00:00:00+00'
      -- Bail granted within the allowance anywhere after the refusal (past a further refusal too).
      AND (n.next_bail_granted_at IS NULL OR NOT granted_in_time(n.next_bail_granted_at, o.occasion_at))
      AND (n.next_released_bail_at IS NULL OR NOT granted_in_time(n.next_released_bail_at, o.occasion_at))
  ),
  aged AS (
    SELECT *,
      year(refused_day) - year(date_of_birth)
        - CASE WHEN month(refused_day) < month(date_of_birth)
                 OR (month(refused_day) = month(date_of_birth) AND day(refused_day) < day(date_of_birth))
               THEN 1 ELSE 0 END AS age,
      detention_power NOT IN ('mha_s136', 'mha_s135') AS power_in_scope
    FROM refusals
  ),
  scoped AS (
    SELECT *,
      CASE
        WHEN date_of_birth IS NOT NULL THEN age < age_limit
        WHEN NOT appears_under_18 THEN false
        WHEN appears_under_18 AND age_limit >= 18 THEN true
      END AS juvenile
    FROM aged
  ),
  -- In scope: one row per (refusal, rule), narrow, put in the tool's order before any text
  -- is made (sorting the finished messages and evidence would cost more).
  judged AS (
    SELECT person_id, custody_record_id, rule_id, detention_power, date_of_birth, appears_under_18, charged_at,
      la_requested_at, la_requested_detail, released_last_at, occasion_at, occasion_number, occasion_ends_at,
      occ_la_requested_at, occ_la_requested_detail, occ_la_requested_count, occ_bail_granted_at, occ_released_bail_at,
      occ_released_to_la_at, occ_released_to_la_count, occ_transferred_to_la_at, occ_transferred_to_la_detail,
      occ_transferred_to_la_count, occ_certificate_at, occ_certificate_detail, occ_certificate_count, age_limit, age,
      juvenile, power_in_scope, next_bail_granted_at, next_released_bail_at, next_released_at,
      -- A request or certificate recorded only after the child left police detention.
      next_released_at IS NOT NULL AND la_requested_at > next_released_at AS request_after_release,
      next_released_at IS NOT NULL AND occ_certificate_at > next_released_at AS certificate_after_release,
      juvenile IS NULL OR power_in_scope IS NULL AS unknown,
      occ_transferred_to_la_count = 0 AND occ_released_to_la_count = 0 AND occ_certificate_count = 0 AS neither
    FROM scoped, (VALUES ('S38-CERTIFICATE'), ('S38-REQUEST'), ('S38-TRANSFER')) AS rules(rule_id)
    WHERE juvenile IS NOT false AND power_in_scope IS NOT false
      -- S38-CERTIFICATE: only a refusal after which the child was not moved.
      AND (rule_id <> 'S38-CERTIFICATE' OR (occ_transferred_to_la_count = 0 AND occ_released_to_la_count = 0))
    -- The tool's order: by child (person, arrival, custody record), rule id, refusal of bail.
    ORDER BY person_id NULLS LAST, arrival_time NULLS LAST, custody_record_id NULLS LAST, rule_id, occasion_number
  ),
  texts AS (
    SELECT *,
      CASE
        WHEN unknown THEN 'cannot_assess'
        WHEN rule_id = 'S38-REQUEST' THEN
          CASE WHEN la_requested_at IS NULL THEN 'breach'
               WHEN occasion_ends_at IS NOT NULL AND la_requested_at >= occasion_ends_at THEN 'breach'
               WHEN request_after_release THEN 'cannot_assess'
               ELSE 'compliant' END
        WHEN rule_id = 'S38-TRANSFER' THEN
          CASE WHEN neither THEN 'breach'
               WHEN occ_transferred_to_la_count = 0 AND occ_released_to_la_count = 0 AND certificate_after_release
                 THEN 'cannot_assess'
               ELSE 'compliant' END
        ELSE CASE WHEN occ_certificate_count = 0 THEN 'breach'
                  WHEN certificate_after_release THEN 'cannot_assess' ELSE 'compliant' END
      END AS outcome,
      CASE WHEN age_limit = 18 THEN '2015-10-26' ELSE '1986-01-01' END AS rule_version,
      CASE WHEN age_limit = 18
        THEN 'PACE 1984 s38(6); s37(15) as amended by Criminal Justice and Courts Act 2015 s42 (SI 2015/1778 art 3(a))'
        ELSE 'PACE 1984 s38(6); s37(15) (arrested juvenile: appears to be under 17)' END
      || CASE WHEN rule_id = 'S38-CERTIFICATE' THEN '; PACE Code C paras 16.7 and 16.10' ELSE '; PACE Code C para 16.7' END
        AS citation,
      -- What the unsettled scope conditions needed and the record lacks, by fact name.
      ' Not recorded: ' || concat_ws(', ',
          CASE WHEN juvenile IS NULL AND appears_under_18 IS NULL THEN 'appears_under_18' END,
          CASE WHEN juvenile IS NULL AND date_of_birth IS NULL THEN 'date_of_birth' END,
          CASE WHEN power_in_scope IS NULL THEN 'detention_power' END) || '.' AS not_recorded,
      'Bail was refused after charge at ' || uk_text(occasion_at)
        || ' (age ' || coalesce(age::VARCHAR, 'not recorded') || ')' AS refused_text,
      'time held after the refusal: ' || span_text(occasion_at, released_last_at)
        || ' (release: ' || uk_text(released_last_at) || ')' AS held_text,
      uk_text(occasion_at) AS occasion_text,
      coalesce(occ_bail_granted_at, occ_released_bail_at) AS bail_at,
      strftime(date_of_birth, '%Y-%m-%d') AS dob_text
    FROM judged
  )
  SELECT person_id, custody_record_id, rule_id, outcome, 'high' AS severity, 'statute' AS basis, citation,
    rule_version,
    CASE rule_id
      WHEN 'S38-REQUEST' THEN
        CASE WHEN unknown THEN
               'Whether the s38(6) duty arose cannot be settled from the record (the child''s age at the refusal '
               || 'of bail, the refusal itself, a charge, or a grant of bail after it is unknown).' || not_recorded
             WHEN la_requested_at IS NULL THEN
               refused_text || ' but no request to the local authority for accommodation is recorded in the episode.'
             WHEN occasion_ends_at IS NOT NULL AND la_requested_at >= occasion_ends_at THEN
               refused_text || ' but no request to the local authority for accommodation is recorded before bail was '
               || 'refused again at ' || uk_text(occasion_ends_at) || ' (the first request was made at '
               || uk_text(la_requested_at) || ', after that).'
             WHEN request_after_release THEN
               refused_text || ' and the child left police detention at ' || uk_text(next_released_at)
               || ', but the first request to the local authority is recorded at ' || uk_text(la_requested_at)
               || ', after that: a request made once the child had left could not have secured a move. Check whether '
               || 'it was made earlier and recorded late.'
             WHEN occ_la_requested_at IS NOT NULL THEN
               'The local authority was asked to accommodate the child (accommodation asked for: '
               || coalesce(occ_la_requested_detail, 'not recorded') || ') at ' || uk_text(occ_la_requested_at) || ', '
               || span_text(occasion_at, occ_la_requested_at) || ' after bail was refused at ' || occasion_text || '.'
             ELSE 'The local authority was asked to accommodate the child (accommodation asked for: '
               || coalesce(la_requested_detail, 'not recorded') || ') at ' || uk_text(la_requested_at)
               || ', before bail was refused at ' || occasion_text || ' (a request earlier in the episode counts).' END
      WHEN 'S38-TRANSFER' THEN
        CASE WHEN unknown THEN
               'Whether the child was moved or certified under s38(6) cannot be settled from the record (the '
               || 'child''s age at the refusal of bail, the refusal itself, a charge, a grant of bail after it, or '
               || 'the move or certificate is unknown).' || not_recorded
             WHEN neither AND bail_at IS NOT NULL THEN
               refused_text || ' and the child was neither moved to local authority accommodation nor certified '
               || 'under s38(6) before bail was granted at ' || uk_text(bail_at) || ', '
               || span_text(occasion_at, bail_at) || ' after the refusal.'
             WHEN neither THEN
               refused_text || ' but the child was neither moved to local authority accommodation nor certified '
               || 'under s38(6); ' || held_text || '.'
             WHEN occ_transferred_to_la_count > 0 THEN
               'The child was moved to ' || coalesce(occ_transferred_to_la_detail, 'not recorded')
               || ' local authority accommodation at ' || uk_text(occ_transferred_to_la_at) || ', '
               || span_text(occasion_at, occ_transferred_to_la_at) || ' after bail was refused at ' || occasion_text
               || '.'
             WHEN occ_released_to_la_count > 0 THEN
               'The child left custody for local authority accommodation (released to_la) at '
               || uk_text(occ_released_to_la_at) || ', ' || span_text(occasion_at, occ_released_to_la_at)
               || ' after bail was refused at ' || occasion_text || '.'
             WHEN certificate_after_release THEN
               refused_text || ' and the child was not moved; the only certificate for that refusal is recorded at '
               || uk_text(occ_certificate_at) || ', after the child left police detention at '
               || uk_text(next_released_at) || '. Check whether it was made earlier and recorded late.'
             ELSE 'The child was not moved but a certificate (' || coalesce(occ_certificate_detail, 'not recorded')
               || ') was made at ' || uk_text(occ_certificate_at) || ', '
               || span_text(occasion_at, occ_certificate_at) || ' after bail was refused at ' || occasion_text || '; '
               || held_text || '; S38-GROUNDS checks the certificate''s ground.' END
      ELSE -- S38-CERTIFICATE
        CASE WHEN unknown THEN
               'Whether a child kept in custody after charge was certified under s38(6) cannot be settled from the '
               || 'record (the child''s age at the refusal of bail, the refusal, a charge, a grant of bail after it, '
               || 'a move or the certificate is unknown).' || not_recorded
             WHEN occ_certificate_count = 0 THEN
               refused_text || ' and the child was not moved to local authority accommodation, but no s38(6) '
               || 'certificate is recorded for that refusal; ' || held_text || '.'
             WHEN certificate_after_release THEN
               refused_text || ' and the child was not moved; the only certificate for that refusal is recorded at '
               || uk_text(occ_certificate_at) || ', after the child left police detention at '
               || uk_text(next_released_at) || ': a certificate records why a child was kept, so one made after the '
               || 'child left does not show that. Check whether it was made earlier and recorded late.'
             ELSE 'The child was not moved, and a certificate (' || coalesce(occ_certificate_detail, 'not recorded')
               || ') was made at ' || uk_text(occ_certificate_at) || ', '
               || span_text(occasion_at, occ_certificate_at) || ' after bail was refused at ' || occasion_text || '.' END
    END AS message,
    -- The evidence: the rule's `evidence:` facts, in its order.
    CASE rule_id
      WHEN 'S38-REQUEST' THEN to_json(struct_pack(
        detention_power := detention_power, date_of_birth := dob_text, appears_under_18 := appears_under_18,
        charged_at := uk_iso(charged_at), occasion_at := uk_iso(occasion_at), occasion_number := occasion_number,
        occasion_ends_at := uk_iso(occasion_ends_at), la_requested_at := uk_iso(la_requested_at),
        la_requested_detail := la_requested_detail, occasion_la_requested_at := uk_iso(occ_la_requested_at),
        occasion_la_requested_detail := occ_la_requested_detail,
        occasion_la_requested_count := occ_la_requested_count,
        occasion_bail_granted_at := uk_iso(occ_bail_granted_at),
        occasion_next_bail_granted_at := uk_iso(next_bail_granted_at),
        occasion_next_released_bail_at := uk_iso(next_released_bail_at),
        occasion_next_released_at := uk_iso(next_released_at)))::VARCHAR
      WHEN 'S38-TRANSFER' THEN to_json(struct_pack(
        detention_power := detention_power, date_of_birth := dob_text, appears_under_18 := appears_under_18,
        charged_at := uk_iso(charged_at), occasion_at := uk_iso(occasion_at), occasion_number := occasion_number,
        occasion_ends_at := uk_iso(occasion_ends_at),
        occasion_transferred_to_la_at := uk_iso(occ_transferred_to_la_at),
        occasion_transferred_to_la_detail := occ_transferred_to_la_detail,
        occasion_released_to_la_at := uk_iso(occ_released_to_la_at),
        occasion_certificate_at := uk_iso(occ_certificate_at), occasion_certificate_detail := occ_certificate_detail,
        occasion_bail_granted_at := uk_iso(occ_bail_granted_at),
        occasion_released_bail_at := uk_iso(occ_released_bail_at), released_last_at := uk_iso(released_last_at),
        occasion_next_bail_granted_at := uk_iso(next_bail_granted_at),
        occasion_next_released_bail_at := uk_iso(next_released_bail_at),
        occasion_next_released_at := uk_iso(next_released_at)))::VARCHAR
      ELSE to_json(struct_pack(
        detention_power := detention_power, date_of_birth := dob_text, appears_under_18 := appears_under_18,
        charged_at := uk_iso(charged_at), occasion_at := uk_iso(occasion_at), occasion_number := occasion_number,
        occasion_ends_at := uk_iso(occasion_ends_at),
        occasion_certificate_at := uk_iso(occ_certificate_at), occasion_certificate_detail := occ_certificate_detail,
        occasion_bail_granted_at := uk_iso(occ_bail_granted_at), released_last_at := uk_iso(released_last_at),
        occasion_next_bail_granted_at := uk_iso(next_bail_granted_at),
        occasion_next_released_bail_at := uk_iso(next_released_bail_at),
        occasion_next_released_at := uk_iso(next_released_at)))::VARCHAR
    END AS evidence,
    occasion_at AS trigger_at
  FROM texts
) TO '{findings}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
