-- Offending rows: each group that appears more than once.
SELECT group_id || ': ' || count(*) || ' rows' AS violation
FROM group_activity
GROUP BY group_id
HAVING count(*) <> 1
