-- survey_indicators: one row per cycle × wave × scope × indicator with at least one answer.
-- Weighted Public Attitude Survey estimates: p = Σw·y / Σw over those answering,
-- effective n = (Σw)² / Σw², 95% interval p ± 1.96·√(p(1−p)/n_eff) clipped to
-- [0, 1], as percentages. Suppressed when fewer than 30 answered.
-- The weights are summed as decimals (20 places): a sum of decimals is exact, so it has
-- the same value whichever threads add which rows, and a rebuild equals what was
-- published. (Summing floats would need a fixed order, fsum(... ORDER BY event_id), and
-- sorting four million answers once per sum made this the slowest table at 10M events.)
WITH answers AS (
    SELECT s.scope, a.wave, a.indicator,
           a.weight::DECIMAL(38, 20) AS weight,
           pow(a.weight, 2)::DECIMAL(38, 20) AS weight_squared,
           a.answer AS agrees
    FROM staging.indicator_answers AS a
    JOIN staging.scope_boroughs AS s USING (borough)
),
sums AS (
    SELECT wave, scope, indicator,
           count(*) AS unweighted_n,
           sum(weight) FILTER (WHERE agrees) AS agreeing_weight,
           sum(weight) AS weight,
           sum(weight_squared) AS weight_squared
    FROM answers
    GROUP BY wave, scope, indicator
),
estimates AS (
    SELECT wave, scope, indicator, unweighted_n,
           coalesce(agreeing_weight, 0)::DOUBLE / weight::DOUBLE AS p,
           pow(weight::DOUBLE, 2) / weight_squared::DOUBLE AS effective_n
    FROM sums
),
intervals AS (
    SELECT *, 1.96 * sqrt(p * (1 - p) / effective_n) AS margin, unweighted_n < 30 AS suppressed
    FROM estimates
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    wave,
    scope,
    indicator,
    CASE WHEN NOT suppressed THEN 100 * p END AS weighted_pct,
    CASE WHEN NOT suppressed THEN 100 * greatest(0.0, p - margin) END AS ci_low,
    CASE WHEN NOT suppressed THEN 100 * least(1.0, p + margin) END AS ci_high,
    unweighted_n,
    effective_n,
    suppressed
FROM intervals
ORDER BY wave, scope, list_position(['good_job', 'trust', 'listens', 'relied_on', 'treats_fairly', 'deals_with_matters', 'informed'], indicator)
