-- Offending rows: each shown estimate whose value or interval leaves [0, 100] or is out of order.
SELECT wave || ' ' || scope || ' ' || indicator AS violation
FROM survey_indicators
WHERE NOT suppressed
  AND NOT (ci_low BETWEEN 0 AND 100 AND ci_high BETWEEN 0 AND 100 AND ci_low <= weighted_pct AND weighted_pct <= ci_high)
