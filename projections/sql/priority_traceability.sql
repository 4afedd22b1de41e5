-- priority_traceability: one row per priority of the adoption in force (the latest).
-- The evidence behind each priority, within its scope (LONDON = all boroughs), counted:
-- consultation responses naming the theme, PAS interviews naming it and their summed weight,
-- the boroughs whose latest CDRP audit ranks it, and all those events together. The events
-- themselves are listed in priority_evidence, from the same staged rows (staging.adopted_evidence),
-- so a row's counts always equal its evidence there; evidence_query is the command that lists them.
-- Sums of floats run in event_id order (fsum ... ORDER BY event_id): split between
-- threads, their last bit would vary, and a rebuild would not equal what was published.
WITH counted AS (
    SELECT scope, rank,
           count(*) FILTER (WHERE kind = 'consultation_response') AS responses,
           count(*) FILTER (WHERE kind = 'survey_interview') AS interviews,
           fsum(weight ORDER BY event_id) FILTER (WHERE kind = 'survey_interview') AS survey_weight,
           list(borough ORDER BY borough) FILTER (WHERE kind = 'cdrp_audit') AS audit_boroughs,
           count(*) AS events
    FROM staging.adopted_evidence
    GROUP BY scope, rank
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    p.rank,
    p.theme,
    p.scope,
    coalesce(c.responses, 0) AS supporting_responses,
    coalesce(c.interviews, 0) AS supporting_interviews,
    coalesce(c.survey_weight, 0.0) AS supporting_survey_weight,
    coalesce(c.audit_boroughs, []::VARCHAR[]) AS cdrp_boroughs,
    coalesce(c.events, 0) AS evidence_events,
    'planning query priority_evidence --cycle ' || (SELECT cycle FROM staging.build_info)
        || ' --scope ' || p.scope || ' --rank ' || p.rank AS evidence_query
FROM staging.adopted_priorities AS p
LEFT JOIN counted AS c ON c.scope = p.scope AND c.rank = p.rank
ORDER BY p.scope = 'LONDON' DESC, p.scope, p.rank
