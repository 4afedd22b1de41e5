-- survey_indicators: one row per cycle × wave × scope × indicator with at least one answer.
-- Weighted Public Attitude Survey estimates: p = Σw·y / Σw over those answering,
-- effective n = (Σw)² / Σw², 95% interval p ± 1.96·√(p(1−p)/n_eff) clipped to
-- [0, 1], as percentages. Suppressed when fewer than 30 answered.
-- Sums of floats run in event_id order (fsum ... ORDER BY event_id): split between
-- threads, their last bit would vary, and a rebuild would not equal what was published.
WITH answers AS (
    SELECT s.scope, a.event_id, a.wave, a.indicator, a.weight,
           CASE WHEN a.answer THEN 1.0 ELSE 0.0 END AS agrees
    FROM staging.indicator_answers AS a
    JOIN staging.scope_boroughs AS s USING (borough)
),
estimates AS (
    SELECT wave, scope, indicator,
           count(*) AS unweighted_n,
           fsum(weight * agrees ORDER BY event_id) / fsum(weight ORDER BY event_id) AS p,
           pow(fsum(weight ORDER BY event_id), 2) / fsum(pow(weight, 2) ORDER BY event_id) AS effective_n
    FROM answers
    GROUP BY wave, scope, indicator
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
