-- Staging: the cycle's evidence as known at (on, as_of), shaped for the
-- Panel tables. Built once per build into staging.duckdb, never published.
-- store_events (the cycle's events and every retraction, cut at on/as_of: a TEMP table of the
-- staging connection, so no Panel table can read it), the
-- retracted ids (projections/building/retractions.py: chains of retractions resolved) and the small
-- reference tables build_info, boroughs and default_windows come first, from Python.

-- The cycle's events, retracted ones left out (and the sealed personal data). TEMP, like
-- store_events: the statements below read it, no Panel table does, so the file never holds it.
CREATE TEMP TABLE events AS
SELECT * EXCLUDE (sealed) FROM store_events
WHERE cycle = (SELECT cycle FROM build_info)
  AND event_id NOT IN (SELECT event_id FROM retracted);

-- The cycle's milestones, as stage_status reads them: the events that open the cycle,
-- approve its programme, sign off a stage, adopt priorities and publish the plan.
CREATE TABLE milestones AS
SELECT event_id, position, occurred_at, event_type, payload
FROM events
WHERE event_type IN ('cycle.opened', 'programme.approved', 'stage.signed_off', 'priorities.adopted', 'plan.published');

CREATE TABLE responses AS
SELECT event_id, position, occurred_at, recorded_at,
       payload->>'borough' AS borough,
       payload->>'channel' AS channel,
       subject,  -- the respondent's surrogate: counts people without naming them
       from_json(payload->'themes', '[{"rank":"INTEGER","theme":"VARCHAR"}]') AS themes
FROM events
WHERE event_type = 'consultation.response_received';

CREATE TABLE audits AS
SELECT event_id, position, occurred_at,
       payload->>'borough' AS borough,
       payload->>'audit_ref' AS audit_ref,
       from_json(payload->'priorities', '[{"rank":"INTEGER","theme":"VARCHAR"}]') AS priorities
FROM events
WHERE event_type = 'cdrp.audit_submitted';

-- A later audit for the same borough supersedes the earlier ones.
CREATE TABLE latest_audits AS
SELECT * EXCLUDE (recency) FROM (
    SELECT *,
           row_number() OVER (PARTITION BY borough ORDER BY occurred_at DESC, position DESC) AS recency,
           count(*) OVER (PARTITION BY borough) AS submitted
    FROM audits
)
WHERE recency = 1;

-- The programme in force: a later approval supersedes an earlier one.
CREATE TABLE programme AS
SELECT (payload->>'default_min_responses')::BIGINT AS default_min_responses,
       from_json(payload->'targets', '[{"borough":"VARCHAR","min_responses":"BIGINT"}]') AS targets
FROM events
WHERE event_type = 'programme.approved'
ORDER BY occurred_at DESC, position DESC
LIMIT 1;

-- Every borough's target (its own, else the default; null with no programme)
-- and its responses so far.
CREATE TABLE borough_targets AS
WITH own_targets AS (
    SELECT t.borough, t.min_responses
    FROM programme, unnest(programme.targets) AS u(t)
),
responses_by_borough AS (
    SELECT borough, count(*) AS responses FROM responses GROUP BY borough
)
SELECT b.borough,
       coalesce(o.min_responses, (SELECT default_min_responses FROM programme)) AS target,
       coalesce(r.responses, 0) AS responses
FROM boroughs AS b
LEFT JOIN own_targets AS o USING (borough)
LEFT JOIN responses_by_borough AS r USING (borough);

-- Feedback: for each round and borough, whether and when it was first published there.
CREATE TABLE feedback AS
SELECT event_id, position, occurred_at,
       (payload->>'round')::INTEGER AS round,
       CASE WHEN json_type(payload->'boroughs') = 'VARCHAR' THEN (SELECT list(borough) FROM boroughs)
            ELSE from_json(payload->'boroughs', '["VARCHAR"]') END AS boroughs,
       coalesce(from_json(payload->'themes', '["VARCHAR"]'), []::VARCHAR[]) AS themes
FROM events
WHERE event_type = 'feedback.published';

CREATE TABLE feedback_reach AS
WITH reached AS (
    SELECT f.round, u.borough, f.occurred_at, f.themes
    FROM feedback AS f, unnest(f.boroughs) AS u(borough)
)
SELECT r.round, b.borough,
       count(x.occurred_at) > 0 AS published,
       min(x.occurred_at) AS first_published_at,
       list_sort(list_distinct(flatten(list(x.themes) FILTER (WHERE x.themes IS NOT NULL)))) AS themes
FROM (VALUES (1), (2)) AS r(round)
CROSS JOIN boroughs AS b
LEFT JOIN reached AS x ON x.round = r.round AND x.borough = b.borough
GROUP BY r.round, b.borough;

-- Public Attitude Survey interviews: one row per interview, with its answers.
-- (the payload read once into a struct of its fields: five extractions parsed it
-- five times, 1.6 times as long for the same rows. The indicators are a struct of
-- the contract's seven, events/contract/vocabulary.py INDICATORS, the only keys it
-- lets in: read as a MAP they took three times as long)
CREATE TABLE interviews AS
SELECT event_id, position, occurred_at,
       interview.wave,
       interview.borough,
       interview.weight,
       coalesce(interview.priorities, []::VARCHAR[]) AS priorities,
       interview.indicators
FROM (
    SELECT event_id, position, occurred_at,
           json_transform(payload, '{"wave": "VARCHAR", "borough": "VARCHAR", "weight": "DOUBLE",
                                     "priorities": ["VARCHAR"],
                                     "indicators": {"good_job": "BOOLEAN", "trust": "BOOLEAN", "listens": "BOOLEAN",
                                                    "relied_on": "BOOLEAN", "treats_fairly": "BOOLEAN",
                                                    "deals_with_matters": "BOOLEAN", "informed": "BOOLEAN"}}') AS interview
    FROM events
    WHERE event_type = 'survey.response_recorded'
);

-- One row per indicator an interview answered (UNPIVOT drops the unanswered: they are null).
CREATE TABLE indicator_answers AS
SELECT event_id, wave, borough, weight, indicator, answer
FROM (
    UNPIVOT (SELECT event_id, wave, borough, weight, indicators.* FROM interviews)
    ON COLUMNS(* EXCLUDE (event_id, wave, borough, weight))
    INTO NAME indicator VALUE answer
);

-- The borough profile in force: a later one for the same borough supersedes.
CREATE TABLE latest_profiles AS
SELECT borough, groups FROM (
    SELECT payload->>'borough' AS borough,
           payload->'groups' AS groups,
           row_number() OVER (PARTITION BY payload->>'borough' ORDER BY occurred_at DESC, position DESC) AS recency
    FROM events
    WHERE event_type = 'borough.profile_recorded'
)
WHERE recency = 1;

-- Population by borough × dimension × group, from the profiles in force.
-- A group the profile leaves out of a dimension it does report counts as 0.
CREATE TABLE profile_population AS
WITH reported AS (
    SELECT p.borough, d.dimension, CAST(p.groups->(d.dimension) AS MAP(VARCHAR, BIGINT)) AS counts
    FROM latest_profiles AS p
    CROSS JOIN (SELECT DISTINCT dimension FROM demographic_groups) AS d
    WHERE json_type(p.groups->(d.dimension)) = 'OBJECT'
)
SELECT r.borough, g.dimension, g.group_name, coalesce(r.counts[g.group_name], 0) AS population
FROM reported AS r
JOIN demographic_groups AS g USING (dimension);

CREATE TABLE meetings AS
SELECT event_id, position, occurred_at,
       payload->>'group_id' AS group_id,
       payload->>'group_kind' AS group_kind,
       payload->>'borough' AS borough,
       (payload->>'attendance')::BIGINT AS attendance,
       (payload->>'cost_gbp')::DOUBLE AS cost_gbp
FROM events
WHERE event_type = 'group.meeting_held';

-- The adoption in force: a later priorities.adopted supersedes the earlier ones.
CREATE TABLE adopted_priorities AS
WITH latest AS (
    SELECT payload FROM events
    WHERE event_type = 'priorities.adopted'
    ORDER BY occurred_at DESC, position DESC
    LIMIT 1
)
SELECT p.rank, p.theme, p.scope
FROM latest, unnest(from_json(latest.payload->'priorities', '[{"rank":"INTEGER","theme":"VARCHAR","scope":"VARCHAR"}]')) AS u(p);

-- Every scope the Panel reads: the 32 boroughs and LONDON, and the boroughs each covers.
CREATE TABLE scope_boroughs AS
SELECT borough AS scope, borough FROM boroughs
UNION ALL
SELECT 'LONDON', borough FROM boroughs;

-- The evidence behind each adopted priority, within its scope (LONDON = all boroughs): the consultation
-- responses naming its theme (at any rank), the PAS interviews naming it as a priority (with their
-- weight), and the latest CDRP audit of each borough ranking it. One row per priority × event.
-- priority_traceability counts these rows and priority_evidence lists them: one reading, so the
-- counts on the Panel's row always equal the evidence listed for it.
CREATE TABLE adopted_evidence AS
WITH priorities AS (
    SELECT p.rank, p.theme, p.scope, s.borough
    FROM adopted_priorities AS p
    JOIN scope_boroughs AS s USING (scope)
)
SELECT p.scope, p.rank, 'consultation_response' AS kind, r.event_id, r.borough, NULL::DOUBLE AS weight
FROM priorities AS p
JOIN responses AS r ON r.borough = p.borough
WHERE list_contains([t.theme FOR t IN r.themes], p.theme)
UNION ALL
SELECT p.scope, p.rank, 'survey_interview', i.event_id, i.borough, i.weight
FROM priorities AS p
JOIN interviews AS i ON i.borough = p.borough
WHERE list_contains(i.priorities, p.theme)
UNION ALL
SELECT p.scope, p.rank, 'cdrp_audit', a.event_id, a.borough, NULL
FROM priorities AS p
JOIN latest_audits AS a ON a.borough = p.borough
WHERE list_contains([t.theme FOR t IN a.priorities], p.theme);
