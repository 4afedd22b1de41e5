-- Offending rows: the borough count, when it is not one row for each of the 32 boroughs.
SELECT 'boroughs: ' || count(*) AS violation
FROM cdrp_audits
HAVING count(DISTINCT borough) <> 32 OR count(*) <> 32
