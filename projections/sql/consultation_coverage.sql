-- consultation_coverage: one row per cycle × borough × channel with at least
-- one response, plus an 'all' row for each of the 32 boroughs (zero included).
-- target and pct_of_target appear on the 'all' rows only; target is null
-- until a programme is approved.
WITH by_channel AS (
    SELECT borough, channel, count(*) AS responses, count(DISTINCT subject) AS respondents
    FROM staging.responses
    GROUP BY borough, channel
),
by_borough AS (
    SELECT b.borough, count(r.event_id) AS responses, count(DISTINCT r.subject) AS respondents
    FROM staging.boroughs AS b
    LEFT JOIN staging.responses AS r USING (borough)
    GROUP BY b.borough
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    borough, channel, responses, respondents,
    NULL::BIGINT AS target,
    NULL::DOUBLE AS pct_of_target
FROM by_channel
UNION ALL
SELECT
    (SELECT cycle FROM staging.build_info),
    a.borough, 'all', a.responses, a.respondents,
    t.target,
    100.0 * a.responses / nullif(t.target, 0)
FROM by_borough AS a
JOIN staging.borough_targets AS t USING (borough)
ORDER BY borough, channel = 'all' DESC, channel
