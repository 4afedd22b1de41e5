-- Offending rows: each priority whose evidence ids repeat, or are fewer than the responses and
-- audits it counts, or that cites the audit of a borough outside its scope.
SELECT scope || ' rank ' || rank AS violation
FROM priority_traceability
WHERE len(list_distinct(evidence_event_ids)) <> len(evidence_event_ids)
   OR len(evidence_event_ids) < supporting_responses + len(cdrp_boroughs)
   OR supporting_survey_weight < 0
   OR (scope <> 'LONDON' AND cdrp_boroughs <> [] AND cdrp_boroughs <> [scope])
