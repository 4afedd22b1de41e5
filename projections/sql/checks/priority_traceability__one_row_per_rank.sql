-- Offending rows: each scope with a rank below 1, or a rank or a theme given twice.
SELECT scope || ' rank ' || rank AS violation
FROM priority_traceability
WHERE rank < 1
UNION ALL
SELECT scope || ' rank ' || rank || ' given ' || count(*) || ' times'
FROM priority_traceability
GROUP BY scope, rank
HAVING count(*) > 1
UNION ALL
SELECT scope || ' theme ' || theme || ' given ' || count(*) || ' times'
FROM priority_traceability
GROUP BY scope, theme
HAVING count(*) > 1
