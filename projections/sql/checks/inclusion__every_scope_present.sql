-- Offending rows: the cell count, when it is not 16 groups for each of the 33 scopes.
SELECT 'cells: ' || count(*) AS violation
FROM inclusion
HAVING count(DISTINCT scope) <> 33 OR count(*) <> 33 * 16
