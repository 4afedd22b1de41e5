-- Offending rows: each event listed twice for one priority, and each row of an unknown kind.
SELECT scope || ' rank ' || rank || ': ' || event_id || ' listed ' || count(*) || ' times' AS violation
FROM priority_evidence
GROUP BY cycle, scope, rank, event_id
HAVING count(*) > 1
UNION ALL
SELECT scope || ' rank ' || rank || ': ' || event_id || ' of unknown kind ' || coalesce(kind, 'null')
FROM priority_evidence
WHERE kind IS NULL OR kind NOT IN ('consultation_response', 'survey_interview', 'cdrp_audit')
