-- priority_evidence: one row per adopted priority × event of its evidence (the ids that
-- priority_traceability counts): each consultation response in scope naming the priority's theme,
-- each PAS interview naming it, each borough's latest CDRP audit ranking it. A priority is named by
-- its scope and rank, as in priority_traceability. Built from the same staged rows as its counts.
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    scope,
    rank,
    kind,
    event_id
FROM staging.adopted_evidence
ORDER BY scope = 'LONDON' DESC, scope, rank, kind, event_id
