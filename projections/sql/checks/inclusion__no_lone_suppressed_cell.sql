-- Offending rows: each scope × dimension with exactly one suppressed cell.
SELECT scope || ' ' || dimension AS violation
FROM inclusion
GROUP BY scope, dimension
HAVING count(*) FILTER (WHERE suppressed) = 1
