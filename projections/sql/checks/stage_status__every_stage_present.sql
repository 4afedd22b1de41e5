-- Offending rows: the stage count, when it is not the timetable's eight stages each once.
SELECT 'stages: ' || count(DISTINCT stage) || ' distinct of ' || count(*) AS violation
FROM stage_status
HAVING count(DISTINCT stage) <> 8 OR count(*) <> 8
