-- Offending rows: each estimate shown on fewer than 30 answers.
SELECT wave || ' ' || scope || ' ' || indicator AS violation
FROM survey_indicators
WHERE unweighted_n < 30 AND weighted_pct IS NOT NULL
