-- theme_ranking: one row per cycle × scope × theme (every theme, every borough and LONDON).
-- Three sources of evidence on what matters, combined:
--   consultation_share  responses in scope naming the theme / responses in scope
--   survey_share        weight of PAS interviews in scope naming it / weight of all in scope
--   cdrp_score          (6 − rank) / 5 in a borough's latest audit, else 0;
--                       for LONDON the mean over boroughs whose audit is received
-- A source with no data in scope is null; combined_score is the mean of the
-- others. rank 1 = highest combined_score, ties broken by theme name.
-- Sums must not depend on the order DuckDB's threads add rows in, or a rebuild would not
-- equal what was published: the survey weights are summed as decimals (20 places; a sum of
-- decimals is exact), as survey_indicators does; the few audit scores as floats in
-- event_id order (fsum ... ORDER BY event_id).
WITH scopes AS (
    SELECT DISTINCT scope FROM staging.scope_boroughs
),
scoped_responses AS (
    SELECT s.scope, r.themes
    FROM staging.responses AS r JOIN staging.scope_boroughs AS s USING (borough)
),
consultation_totals AS (
    SELECT scope, count(*) AS responses FROM scoped_responses GROUP BY scope
),
consultation_mentions AS (
    SELECT scope, t.theme, count(*) AS responses
    FROM scoped_responses, unnest(themes) AS u(t)
    GROUP BY scope, t.theme
),
scoped_interviews AS (
    SELECT s.scope, i.weight::DECIMAL(38, 20) AS weight, i.priorities
    FROM staging.interviews AS i JOIN staging.scope_boroughs AS s USING (borough)
),
survey_totals AS (
    SELECT scope, sum(weight) AS weight FROM scoped_interviews GROUP BY scope
),
survey_mentions AS (
    SELECT scope, u.theme, sum(weight) AS weight
    FROM scoped_interviews, unnest(priorities) AS u(theme)
    GROUP BY scope, u.theme
),
audit_scores AS (
    SELECT a.event_id, a.borough, p.theme, (6 - p.rank) / 5.0 AS score
    FROM staging.latest_audits AS a, unnest(a.priorities) AS u(p)
),
audited_boroughs AS (
    SELECT s.scope, count(*) AS boroughs
    FROM staging.latest_audits AS a JOIN staging.scope_boroughs AS s USING (borough)
    GROUP BY s.scope
),
cdrp_totals AS (
    SELECT s.scope, a.theme, fsum(a.score ORDER BY a.event_id) AS score
    FROM audit_scores AS a JOIN staging.scope_boroughs AS s USING (borough)
    GROUP BY s.scope, a.theme
),
sources AS (
    SELECT sc.scope, t.theme,
           coalesce(cm.responses, 0) / ct.responses AS consultation_share,
           coalesce(sm.weight, 0)::DOUBLE / st.weight::DOUBLE AS survey_share,
           coalesce(cd.score, 0) / ab.boroughs AS cdrp_score
    FROM scopes AS sc
    CROSS JOIN staging.themes AS t
    LEFT JOIN consultation_totals AS ct ON ct.scope = sc.scope
    LEFT JOIN consultation_mentions AS cm ON cm.scope = sc.scope AND cm.theme = t.theme
    LEFT JOIN survey_totals AS st ON st.scope = sc.scope
    LEFT JOIN survey_mentions AS sm ON sm.scope = sc.scope AND sm.theme = t.theme
    LEFT JOIN audited_boroughs AS ab ON ab.scope = sc.scope
    LEFT JOIN cdrp_totals AS cd ON cd.scope = sc.scope AND cd.theme = t.theme
),
combined AS (
    SELECT *,
           (coalesce(consultation_share, 0) + coalesce(survey_share, 0) + coalesce(cdrp_score, 0))
           / nullif((consultation_share IS NOT NULL)::INTEGER + (survey_share IS NOT NULL)::INTEGER
                    + (cdrp_score IS NOT NULL)::INTEGER, 0) AS combined_score
    FROM sources
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    scope, theme, consultation_share, survey_share, cdrp_score, combined_score,
    -- rounded for ranking only, so that floating-point noise never reorders a true tie
    row_number() OVER (PARTITION BY scope ORDER BY round(combined_score, 12) DESC NULLS LAST, theme) AS rank
FROM combined
ORDER BY scope, rank
