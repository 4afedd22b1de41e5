-- priority_traceability: one row per priority of the adoption in force (the latest).
-- The evidence behind each priority, within its scope (LONDON = all boroughs):
-- consultation responses naming the theme, the summed weight of PAS interviews
-- naming it, the boroughs whose latest CDRP audit ranks it, and the ids of all
-- of those events, sorted.
-- Sums of floats run in event_id order (fsum ... ORDER BY event_id): split between
-- threads, their last bit would vary, and a rebuild would not equal what was published.
WITH priorities AS (
    SELECT p.rank, p.theme, p.scope, s.borough
    FROM staging.adopted_priorities AS p
    JOIN staging.scope_boroughs AS s USING (scope)
),
responses AS (
    SELECT p.rank, p.scope, r.event_id
    FROM priorities AS p
    JOIN staging.responses AS r ON r.borough = p.borough
    WHERE list_contains([t.theme FOR t IN r.themes], p.theme)
),
interviews AS (
    SELECT p.rank, p.scope, i.event_id, i.weight
    FROM priorities AS p
    JOIN staging.interviews AS i ON i.borough = p.borough
    WHERE list_contains(i.priorities, p.theme)
),
audits AS (
    SELECT p.rank, p.scope, a.borough, a.event_id
    FROM priorities AS p
    JOIN staging.latest_audits AS a ON a.borough = p.borough
    WHERE list_contains([t.theme FOR t IN a.priorities], p.theme)
),
evidence AS (
    SELECT rank, scope, event_id FROM responses
    UNION ALL SELECT rank, scope, event_id FROM interviews
    UNION ALL SELECT rank, scope, event_id FROM audits
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    p.rank,
    p.theme,
    p.scope,
    (SELECT count(*) FROM responses AS r WHERE r.rank = p.rank AND r.scope = p.scope) AS supporting_responses,
    (SELECT coalesce(fsum(i.weight ORDER BY i.event_id), 0.0) FROM interviews AS i WHERE i.rank = p.rank AND i.scope = p.scope) AS supporting_survey_weight,
    coalesce((SELECT list(a.borough ORDER BY a.borough) FROM audits AS a WHERE a.rank = p.rank AND a.scope = p.scope), []::VARCHAR[]) AS cdrp_boroughs,
    coalesce((SELECT list(e.event_id ORDER BY e.event_id) FROM evidence AS e WHERE e.rank = p.rank AND e.scope = p.scope), []::VARCHAR[]) AS evidence_event_ids
FROM staging.adopted_priorities AS p
ORDER BY p.scope = 'LONDON' DESC, p.scope, p.rank
