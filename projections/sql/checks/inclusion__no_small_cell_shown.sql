-- Offending rows: each cell shown although fewer than 10 respondents are in it.
SELECT scope || ' ' || dimension || '=' || "group" AS violation
FROM inclusion
WHERE NOT suppressed AND (respondents IS NULL OR respondents < 10)
