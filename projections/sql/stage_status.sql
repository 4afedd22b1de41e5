-- stage_status: one row per cycle × stage.
-- Where each stage of the timetable stands at `on`: its window (default, or
-- overridden by cycle.opened), its status, whether its gate holds, and what
-- still blocks it.
WITH window_overrides AS (
    -- a later cycle.opened overrides an earlier one, stage by stage
    SELECT w.stage, w.opens_on, w.due_on,
           row_number() OVER (PARTITION BY w.stage ORDER BY e.occurred_at DESC, e.position DESC) AS recency
    FROM staging.milestones AS e,
         unnest(from_json(e.payload->'timetable', '[{"stage":"VARCHAR","opens_on":"DATE","due_on":"DATE"}]')) AS t(w)
    WHERE e.event_type = 'cycle.opened'
),
windows AS (
    SELECT d.stage, d.stage_order,
           coalesce(o.opens_on, d.opens_on) AS opens_on,
           coalesce(o.due_on, d.due_on) AS due_on
    FROM staging.default_windows AS d
    LEFT JOIN window_overrides AS o ON o.stage = d.stage AND o.recency = 1
),
latest_sign_off AS (
    SELECT payload->>'stage' AS stage, payload->>'body' AS body, occurred_at,
           row_number() OVER (PARTITION BY payload->>'stage' ORDER BY occurred_at DESC, position DESC) AS recency
    FROM staging.milestones
    WHERE event_type = 'stage.signed_off'
),
sign_offs AS (SELECT stage, body, occurred_at FROM latest_sign_off WHERE recency = 1),
has AS (
    SELECT
        bool_or(event_type = 'cycle.opened') AS cycle_opened,
        bool_or(event_type = 'programme.approved') AS programme_approved,
        bool_or(event_type = 'priorities.adopted') AS priorities_adopted,
        bool_or(event_type = 'plan.published') AS plan_published
    FROM staging.milestones
),
-- Each unmet part of a gate is one blocker row: (stage, sort key, code).
blockers AS (
    SELECT 'brief' AS stage, 0 AS sort_key, 'cycle_not_opened' AS code FROM has WHERE NOT coalesce(cycle_opened, false)
    UNION ALL
    -- every stage after the brief needs the stage before it signed off
    SELECT w.stage, 0, previous.stage || '_not_signed_off'
    FROM windows AS w
    JOIN windows AS previous ON previous.stage_order = w.stage_order - 1
    WHERE previous.stage NOT IN (SELECT stage FROM sign_offs)
    UNION ALL
    SELECT 'programme_approval', 1, 'programme_not_approved' FROM has WHERE NOT coalesce(programme_approved, false)
    UNION ALL
    -- fieldwork: with no programme there is no target to meet yet
    SELECT 'fieldwork', 1, 'programme_not_approved' FROM has WHERE NOT coalesce(programme_approved, false)
    UNION ALL
    SELECT 'fieldwork', 2, 'below_target:' || borough
    FROM staging.borough_targets
    WHERE target IS NOT NULL AND responses < target
    UNION ALL
    SELECT 'analysis', 2, 'audit_missing:' || b.borough
    FROM staging.boroughs AS b
    WHERE b.borough NOT IN (SELECT borough FROM staging.audits)
    UNION ALL
    SELECT CASE f.round WHEN 1 THEN 'feedback_1' ELSE 'feedback_2' END, 2, 'feedback_missing:' || f.borough
    FROM staging.feedback_reach AS f
    WHERE NOT f.published
    UNION ALL
    SELECT 'priorities', 1, 'priorities_not_adopted' FROM has WHERE NOT coalesce(priorities_adopted, false)
    UNION ALL
    SELECT 'publication', 1, 'plan_not_published' FROM has WHERE NOT coalesce(plan_published, false)
),
blocker_lists AS (
    SELECT stage, list(code ORDER BY sort_key, code) AS blockers
    FROM blockers
    GROUP BY stage
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    w.stage,
    w.opens_on,
    w.due_on,
    CASE
        WHEN s.stage IS NOT NULL THEN 'signed_off'
        WHEN (SELECT on_date FROM staging.build_info) < w.opens_on THEN 'upcoming'
        WHEN (SELECT on_date FROM staging.build_info) > w.due_on THEN 'overdue'
        ELSE 'open'
    END AS status,
    b.blockers IS NULL AS ready,
    coalesce(b.blockers, []::VARCHAR[]) AS blockers,
    s.body AS signed_off_by,
    s.occurred_at AS signed_off_at
FROM windows AS w
LEFT JOIN sign_offs AS s USING (stage)
LEFT JOIN blocker_lists AS b USING (stage)
ORDER BY w.stage_order
