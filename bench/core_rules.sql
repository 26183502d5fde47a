-- The three core s38(6) rules (rules/S38-REQUEST.yaml, S38-TRANSFER.yaml, S38-CERTIFICATE.yaml)
-- written by hand in DuckDB SQL: reads a generated record set's detentions.parquet and
-- events.parquet and writes findings.parquet with the rows `custody check --formats parquet`
-- writes with a rule folder holding only those three rules: the same columns, outcomes,
-- messages, evidence JSON, rule versions, citations and trigger instants.
--
-- Placeholders filled in by bench/duckdb_core.py: {detentions}, {events}, {findings}.
-- It assumes clean input (typed Parquet as `custody generate` writes it); the tool also
-- validates every value and reports what it cannot use, which this query does not.
--
-- Semantics, as in the rule files:
-- * in scope: detention_power pace_arrest or other, charged and bail refused (first
--   'charged' / 'bail_refused' events), and a juvenile at the refusal of bail;
-- * the version of the law is chosen by the refusal of bail (the trigger): from 1986-01-01
--   a juvenile is under 17, from 2015-10-26 00:00 UK time under 18;
-- * age in whole years on the UK calendar date of the refusal (attained at 00:00 UK time
--   on the birthday; a 29 February birthday is reached on 1 March in a common year);
--   with no date of birth, appears_under_18 decides (false: not a juvenile; true: a
--   juvenile under the 18 limit, unknown under the 17 limit); unknown -> cannot_assess;
-- * S38-CERTIFICATE only for a child with no 'transferred_to_la' event;
-- * messages: UK local times as '2015-07-01 23:05 BST', durations as '2h 00m', a missing
--   value as 'not recorded'; evidence: UK-offset ISO times, keys in the rule's order.

SET TimeZone = 'UTC';

-- An instant in a message: UK local time with its zone abbreviation.
CREATE OR REPLACE MACRO uk_text(t) AS coalesce(
  strftime(timezone('Europe/London', t), '%Y-%m-%d %H:%M')
    || CASE WHEN timezone('Europe/London', t) > timezone('UTC', t) THEN ' BST' ELSE ' GMT' END,
  'not recorded');

-- An instant in the evidence: ISO 8601 with the UK offset.
CREATE OR REPLACE MACRO uk_iso(t) AS
  strftime(timezone('Europe/London', t), '%Y-%m-%dT%H:%M:%S')
    || CASE WHEN timezone('Europe/London', t) > timezone('UTC', t) THEN '+01:00' ELSE '+00:00' END;

-- The elapsed time from a to b in whole minutes (truncated), and as '5h 07m' in a message.
CREATE OR REPLACE MACRO span_minutes(a, b) AS (epoch_us(b) - epoch_us(a)) // 60000000;
CREATE OR REPLACE MACRO span_text(a, b) AS coalesce(
  CASE WHEN span_minutes(a, b) < 0 THEN '-' ELSE '' END
    || (abs(span_minutes(a, b)) // 60)::VARCHAR || 'h '
    || lpad((abs(span_minutes(a, b)) % 60)::VARCHAR, 2, '0') || 'm',
  'not recorded');

COPY (
  -- Only records where bail was refused can be in scope: aggregate their events alone.
  WITH refused AS (
    SELECT DISTINCT custody_record_id FROM read_parquet('{events}') WHERE event_type = 'bail_refused'
  ),
  ev AS (
    SELECT custody_record_id,
      min(event_time) FILTER (WHERE event_type = 'charged') AS charged_at,
      min(event_time) FILTER (WHERE event_type = 'bail_refused') AS bail_refused_at,
      min(event_time) FILTER (WHERE event_type = 'la_requested') AS la_requested_at,
      max(event_time) FILTER (WHERE event_type = 'la_requested') AS la_requested_last_at,
      arg_min_null(detail, event_time) FILTER (WHERE event_type = 'la_requested') AS la_requested_detail,
      count(*) FILTER (WHERE event_type = 'la_requested') AS la_requested_count,
      min(event_time) FILTER (WHERE event_type = 'transferred_to_la') AS transferred_to_la_at,
      arg_min_null(detail, event_time) FILTER (WHERE event_type = 'transferred_to_la') AS transferred_to_la_detail,
      count(*) FILTER (WHERE event_type = 'transferred_to_la') AS transferred_to_la_count,
      min(event_time) FILTER (WHERE event_type = 'certificate') AS certificate_at,
      arg_min_null(detail, event_time) FILTER (WHERE event_type = 'certificate') AS certificate_detail,
      count(*) FILTER (WHERE event_type = 'certificate') AS certificate_count,
      max(event_time) FILTER (WHERE event_type = 'released') AS released_last_at
    FROM read_parquet('{events}') SEMI JOIN refused USING (custody_record_id)
    WHERE event_type IN ('charged', 'bail_refused', 'la_requested', 'transferred_to_la', 'certificate', 'released')
    GROUP BY custody_record_id
  ),
  charged AS (
    SELECT d.person_id, d.custody_record_id, d.detention_power, d.date_of_birth, d.appears_under_18, ev.* EXCLUDE (custody_record_id),
      CAST(timezone('Europe/London', ev.bail_refused_at) AS DATE) AS refused_day,
      CASE WHEN ev.bail_refused_at >= TIMESTAMPTZ '2015-10-26 00:00:00+00' THEN 18 ELSE 17 END AS age_limit
    FROM read_parquet('{detentions}') d JOIN ev USING (custody_record_id)
    WHERE d.detention_power IN ('pace_arrest', 'other')
      AND ev.charged_at IS NOT NULL
      AND ev.bail_refused_at >= TIMESTAMPTZ '1986-01-01 00:00:00+00'
  ),
  aged AS (
    SELECT *,
      year(refused_day) - year(date_of_birth)
        - CASE WHEN month(refused_day) < month(date_of_birth)
                 OR (month(refused_day) = month(date_of_birth) AND day(refused_day) < day(date_of_birth))
               THEN 1 ELSE 0 END AS age
    FROM charged
  ),
  scoped AS (
    SELECT *,
      CASE
        WHEN date_of_birth IS NOT NULL THEN age < age_limit
        WHEN NOT appears_under_18 THEN false
        WHEN appears_under_18 AND age_limit >= 18 THEN true
      END AS juvenile,
      CASE WHEN age_limit = 18 THEN '2015-10-26' ELSE '1986-01-01' END AS rule_version,
      CASE WHEN age_limit = 18
        THEN 'PACE 1984 s38(6); s37(15) as amended by Criminal Justice and Courts Act 2015 s42 (SI 2015/1778 art 3(a))'
        ELSE 'PACE 1984 s38(6); s37(15) (arrested juvenile: appears to be under 17)' END AS citation_s38,
      ' Not recorded: ' || concat_ws(', ',
        CASE WHEN appears_under_18 IS NULL THEN 'appears_under_18' END,
        CASE WHEN date_of_birth IS NULL THEN 'date_of_birth' END) || '.' AS not_recorded,
      'Bail was refused after charge at ' || uk_text(bail_refused_at)
        || ' (age ' || coalesce(age::VARCHAR, 'not recorded') || ')' AS refused_text,
      'time held after the refusal: ' || span_text(bail_refused_at, released_last_at)
        || ' (release: ' || uk_text(released_last_at) || ')' AS held_text,
      uk_text(bail_refused_at) AS refused_at_text,
      strftime(date_of_birth, '%Y-%m-%d') AS dob_text
    FROM aged
  ),
  request AS (
    SELECT person_id, custody_record_id, 'S38-REQUEST' AS rule_id,
      CASE WHEN juvenile IS NULL THEN 'cannot_assess'
           WHEN la_requested_last_at IS NULL OR la_requested_last_at < bail_refused_at THEN 'breach'
           ELSE 'compliant' END AS outcome,
      rule_version, citation_s38 || '; PACE Code C para 16.7' AS citation,
      CASE WHEN juvenile IS NULL THEN
             'Whether the s38(6) duty arose cannot be settled from the record (the child''s age at the refusal '
             || 'of bail, or the refusal itself, is unknown).' || not_recorded
           WHEN la_requested_last_at IS NULL OR la_requested_last_at < bail_refused_at THEN
             refused_text || ' but no request to the local authority for accommodation is recorded after it.'
           ELSE 'The local authority was asked for ' || coalesce(la_requested_detail, 'not recorded')
             || ' accommodation at ' || uk_text(la_requested_last_at) || ', '
             || span_text(bail_refused_at, la_requested_last_at)
             || ' after bail was refused at ' || refused_at_text || '.' END AS message,
      to_json(struct_pack(
        detention_power := detention_power, date_of_birth := dob_text, appears_under_18 := appears_under_18,
        charged_at := uk_iso(charged_at), bail_refused_at := uk_iso(bail_refused_at),
        la_requested_at := uk_iso(la_requested_at), la_requested_last_at := uk_iso(la_requested_last_at),
        la_requested_detail := la_requested_detail, la_requested_count := la_requested_count
      ))::VARCHAR AS evidence,
      bail_refused_at AS trigger_at
    FROM scoped WHERE juvenile IS NOT false
  ),
  transfer AS (
    SELECT person_id, custody_record_id, 'S38-TRANSFER' AS rule_id,
      CASE WHEN juvenile IS NULL THEN 'cannot_assess'
           WHEN transferred_to_la_count = 0 AND certificate_count = 0 THEN 'breach'
           ELSE 'compliant' END AS outcome,
      rule_version, citation_s38 || '; PACE Code C para 16.7' AS citation,
      CASE WHEN juvenile IS NULL THEN
             'Whether the child was moved or certified under s38(6) cannot be settled from the record (the '
             || 'child''s age at the refusal of bail, the refusal itself, or the move or certificate is unknown).'
             || not_recorded
           WHEN transferred_to_la_count = 0 AND certificate_count = 0 THEN
             refused_text || ' but the child was neither moved to local authority accommodation nor certified '
             || 'under s38(6); ' || held_text || '.'
           WHEN transferred_to_la_count > 0 THEN
             'The child was moved to ' || coalesce(transferred_to_la_detail, 'not recorded')
             || ' local authority accommodation at ' || uk_text(transferred_to_la_at) || ', '
             || span_text(bail_refused_at, transferred_to_la_at)
             || ' after bail was refused at ' || refused_at_text || '.'
           ELSE 'The child was not moved but a certificate (' || coalesce(certificate_detail, 'not recorded')
             || ') was made at ' || uk_text(certificate_at) || ', ' || span_text(bail_refused_at, certificate_at)
             || ' after bail was refused at ' || refused_at_text || '; ' || held_text
             || '; S38-GROUNDS checks the certificate''s ground.' END AS message,
      to_json(struct_pack(
        detention_power := detention_power, date_of_birth := dob_text, appears_under_18 := appears_under_18,
        charged_at := uk_iso(charged_at), bail_refused_at := uk_iso(bail_refused_at),
        transferred_to_la_at := uk_iso(transferred_to_la_at), transferred_to_la_detail := transferred_to_la_detail,
        transferred_to_la_count := transferred_to_la_count, certificate_at := uk_iso(certificate_at),
        certificate_detail := certificate_detail, certificate_count := certificate_count,
        released_last_at := uk_iso(released_last_at)
      ))::VARCHAR AS evidence,
      bail_refused_at AS trigger_at
    FROM scoped WHERE juvenile IS NOT false
  ),
  certificate AS (
    SELECT person_id, custody_record_id, 'S38-CERTIFICATE' AS rule_id,
      CASE WHEN juvenile IS NULL THEN 'cannot_assess'
           WHEN certificate_count = 0 THEN 'breach'
           ELSE 'compliant' END AS outcome,
      rule_version, citation_s38 || '; PACE Code C paras 16.7 and 16.10' AS citation,
      CASE WHEN juvenile IS NULL THEN
             'Whether a child kept in custody after charge was certified under s38(6) cannot be settled from the '
             || 'record (the child''s age at the refusal of bail, the refusal, a move or the certificate is unknown).'
             || not_recorded
           WHEN certificate_count = 0 THEN
             refused_text || ' and the child was not moved to local authority accommodation, but no s38(6) '
             || 'certificate is recorded; ' || held_text || '.'
           ELSE 'The child was not moved, and a certificate (' || coalesce(certificate_detail, 'not recorded')
             || ') was made at ' || uk_text(certificate_at) || ', ' || span_text(bail_refused_at, certificate_at)
             || ' after bail was refused at ' || refused_at_text || '.' END AS message,
      to_json(struct_pack(
        detention_power := detention_power, date_of_birth := dob_text, appears_under_18 := appears_under_18,
        charged_at := uk_iso(charged_at), bail_refused_at := uk_iso(bail_refused_at),
        transferred_to_la_count := transferred_to_la_count, certificate_at := uk_iso(certificate_at),
        certificate_detail := certificate_detail, certificate_count := certificate_count,
        released_last_at := uk_iso(released_last_at)
      ))::VARCHAR AS evidence,
      bail_refused_at AS trigger_at
    FROM scoped WHERE juvenile IS NOT false AND transferred_to_la_count = 0
  )
  SELECT person_id, custody_record_id, rule_id, outcome, 'high' AS severity, 'statute' AS basis,
    citation, rule_version, message, evidence, trigger_at
  FROM (SELECT * FROM request UNION ALL SELECT * FROM transfer UNION ALL SELECT * FROM certificate)
) TO '{findings}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1);
