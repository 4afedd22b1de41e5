-- group_activity: one row per cycle × consultative group (or ward panel).
-- The value-for-money view: meetings held, total attendance, total cost, and
-- cost per attendee (null when nobody attended). Kind and borough are those
-- of the group's latest meeting.
-- Sums of floats run in event_id order (fsum ... ORDER BY event_id): split between
-- threads, their last bit would vary, and a rebuild would not equal what was published.
WITH latest AS (
    SELECT group_id, group_kind, borough,
           row_number() OVER (PARTITION BY group_id ORDER BY occurred_at DESC, position DESC) AS recency
    FROM staging.meetings
),
totals AS (
    SELECT group_id, count(*) AS meetings, sum(attendance) AS attendance, fsum(cost_gbp ORDER BY event_id) AS cost_gbp
    FROM staging.meetings
    GROUP BY group_id
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    t.group_id,
    l.group_kind,
    l.borough,
    t.meetings,
    t.attendance,
    t.cost_gbp,
    t.cost_gbp / nullif(t.attendance, 0) AS cost_per_attendee
FROM totals AS t
JOIN latest AS l ON l.group_id = t.group_id AND l.recency = 1
ORDER BY t.group_id
