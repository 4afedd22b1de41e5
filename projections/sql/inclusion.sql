-- inclusion: one row per cycle × scope × dimension × group, for every group of
-- the four dimensions' vocabularies, in every borough and LONDON.
-- Who we are hearing from against who lives there, with disclosure control:
-- a cell under 10 respondents (zero included) is suppressed, and where exactly
-- one cell of a scope × dimension is suppressed, the smallest other cell
-- (ties: first group name, alphabetically) is suppressed too.
WITH stated AS (
    -- one row per response × dimension the respondent stated (UNPIVOT drops the unstated)
    UNPIVOT staging.response_demographics
    ON age_band, gender, ethnic_group, disability
    INTO NAME dimension VALUE group_name
),
latest_statement AS (
    -- a respondent counts once per scope; their latest stated value in the scope is used
    SELECT s.scope, st.subject, st.dimension, st.group_name,
           row_number() OVER (PARTITION BY s.scope, st.subject, st.dimension
                              ORDER BY r.occurred_at DESC, r.position DESC) AS recency
    FROM stated AS st
    JOIN staging.responses AS r USING (event_id)
    JOIN staging.scope_boroughs AS s ON s.borough = r.borough
),
respondent_groups AS (
    SELECT scope, subject, dimension, group_name FROM latest_statement WHERE recency = 1
),
group_counts AS (
    SELECT scope, dimension, group_name, count(*) AS respondents
    FROM respondent_groups GROUP BY scope, dimension, group_name
),
stated_counts AS (
    SELECT scope, dimension, count(*) AS stated
    FROM respondent_groups GROUP BY scope, dimension
),
population AS (
    SELECT s.scope, p.dimension, p.group_name, sum(p.population) AS population
    FROM staging.profile_population AS p
    JOIN staging.scope_boroughs AS s USING (borough)
    GROUP BY s.scope, p.dimension, p.group_name
),
population_totals AS (
    SELECT scope, dimension, sum(population) AS population
    FROM population GROUP BY scope, dimension
),
cells AS (
    SELECT sc.scope, g.dimension, g.group_name, g.group_order,
           coalesce(c.respondents, 0) AS respondents,
           coalesce(c.respondents, 0) / t.stated AS share,
           p.population / nullif(pt.population, 0) AS population_share
    FROM (SELECT DISTINCT scope FROM staging.scope_boroughs) AS sc
    CROSS JOIN staging.demographic_groups AS g
    LEFT JOIN group_counts AS c ON c.scope = sc.scope AND c.dimension = g.dimension AND c.group_name = g.group_name
    LEFT JOIN stated_counts AS t ON t.scope = sc.scope AND t.dimension = g.dimension
    LEFT JOIN population AS p ON p.scope = sc.scope AND p.dimension = g.dimension AND p.group_name = g.group_name
    LEFT JOIN population_totals AS pt ON pt.scope = sc.scope AND pt.dimension = g.dimension
),
primary_suppression AS (
    SELECT *, respondents < 10 AS small,
           count(*) FILTER (WHERE respondents < 10) OVER (PARTITION BY scope, dimension) AS small_cells
    FROM cells
),
secondary_suppression AS (
    -- the one cell that would let a lone suppressed cell be recovered by subtraction
    SELECT scope, dimension, group_name FROM (
        SELECT scope, dimension, group_name,
               row_number() OVER (PARTITION BY scope, dimension ORDER BY respondents, group_name) AS smallest
        FROM primary_suppression
        WHERE small_cells = 1 AND NOT small
    )
    WHERE smallest = 1
),
suppression AS (
    SELECT p.*, p.small OR s.group_name IS NOT NULL AS suppressed
    FROM primary_suppression AS p
    LEFT JOIN secondary_suppression AS s USING (scope, dimension, group_name)
)
SELECT
    (SELECT cycle FROM staging.build_info) AS cycle,
    scope,
    dimension,
    group_name AS "group",
    CASE WHEN NOT suppressed THEN respondents END AS respondents,
    CASE WHEN NOT suppressed THEN share END AS share,
    population_share,
    CASE WHEN NOT suppressed THEN share / nullif(population_share, 0) END AS representation_ratio,
    suppressed
FROM suppression
ORDER BY scope, list_position(['age_band', 'gender', 'ethnic_group', 'disability'], dimension), group_order
