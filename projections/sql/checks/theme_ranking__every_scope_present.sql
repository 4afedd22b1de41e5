-- Offending rows: the row count, when it is not the 21 themes ranked once each in each of the 33 scopes.
SELECT 'rows: ' || count(*) AS violation
FROM theme_ranking
HAVING count(*) <> 33 * 21 OR count(DISTINCT scope || '/' || rank) <> 33 * 21
