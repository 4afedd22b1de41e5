-- Offending rows: each priority whose counts in priority_traceability differ from its evidence
-- listed here, and each priority listed here that priority_traceability does not hold.
WITH listed AS (
    SELECT cycle, scope, rank,
           count(*) FILTER (WHERE kind = 'consultation_response') AS responses,
           count(*) FILTER (WHERE kind = 'survey_interview') AS interviews,
           count(*) FILTER (WHERE kind = 'cdrp_audit') AS audits,
           count(*) AS events
    FROM priority_evidence
    GROUP BY cycle, scope, rank
)
SELECT coalesce(t.scope, l.scope) || ' rank ' || coalesce(t.rank, l.rank) || ': '
       || CASE WHEN t.rank IS NULL THEN 'evidence listed for a priority priority_traceability does not hold'
               ELSE 'priority_traceability counts ' || t.evidence_events || ' evidence events, '
                    || coalesce(l.events, 0) || ' listed' END AS violation
FROM priority_traceability AS t
FULL JOIN listed AS l ON l.cycle = t.cycle AND l.scope = t.scope AND l.rank = t.rank
WHERE t.rank IS NULL
   OR t.supporting_responses <> coalesce(l.responses, 0)
   OR t.supporting_interviews <> coalesce(l.interviews, 0)
   OR len(t.cdrp_boroughs) <> coalesce(l.audits, 0)
   OR t.evidence_events <> coalesce(l.events, 0)
