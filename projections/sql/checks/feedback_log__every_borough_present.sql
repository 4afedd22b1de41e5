-- Offending rows: each feedback round that does not cover the 32 boroughs.
SELECT 'round ' || round || ': ' || count(*) || ' boroughs' AS violation
FROM (SELECT 1 AS round UNION ALL SELECT 2) AS r
LEFT JOIN feedback_log USING (round)
GROUP BY round
HAVING count(DISTINCT borough) <> 32
