-- cdrp_audits: one row per cycle × borough, all 32, received or not.
-- The latest audit of a borough (by occurred_at, then arrival) supersedes the
-- earlier ones; top_priorities are its themes in rank order.
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    b.borough,
    a.borough IS NOT NULL AS received,
    a.audit_ref,
    coalesce(a.submitted - 1, 0) AS superseded_count,
    [p.theme FOR p IN list_sort(a.priorities)] AS top_priorities
FROM staging.boroughs AS b
LEFT JOIN staging.latest_audits AS a USING (borough)
ORDER BY b.borough
