-- Offending rows: the count of 'all' rows, when it is not one for each of the 32 boroughs.
SELECT 'boroughs with an all row: ' || count(*) AS violation
FROM consultation_coverage
WHERE channel = 'all'
HAVING count(DISTINCT borough) <> 32 OR count(*) <> 32
