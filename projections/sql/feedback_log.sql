-- feedback_log: one row per cycle × round (1, 2) × borough (all 32).
-- Whether the Authority has fed back what it heard to each borough, when it
-- first did, and the themes fed back there (all feedback events of the
-- round that reached the borough; null when none did).
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    round,
    borough,
    published,
    first_published_at,
    themes
FROM staging.feedback_reach
ORDER BY round, borough
