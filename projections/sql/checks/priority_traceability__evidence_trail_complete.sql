-- Offending rows: each priority whose evidence count is not its responses, interviews and audits
-- together, whose survey weight is negative, or that cites the audit of a borough outside its scope.
-- (That the counts equal the evidence listed is priority_evidence's check counted_in_traceability.)
SELECT scope || ' rank ' || rank AS violation
FROM priority_traceability
WHERE evidence_events <> supporting_responses + supporting_interviews + len(cdrp_boroughs)
   OR supporting_survey_weight < 0
   OR (supporting_interviews = 0 AND supporting_survey_weight <> 0)
   OR (scope <> 'LONDON' AND cdrp_boroughs <> [] AND cdrp_boroughs <> [scope])
