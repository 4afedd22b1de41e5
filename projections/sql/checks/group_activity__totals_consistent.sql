-- Offending rows: each group with no meeting, a negative total, or a cost per attendee that is not
-- cost_gbp / attendance (null exactly when nobody attended).
SELECT group_id AS violation
FROM group_activity
WHERE meetings < 1
   OR attendance < 0
   OR cost_gbp < 0
   OR (attendance = 0) <> (cost_per_attendee IS NULL)
   OR abs(cost_per_attendee - cost_gbp / attendance) > 1e-9 * greatest(1.0, cost_per_attendee)
