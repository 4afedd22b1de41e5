"""The one partitioning of the projections: a cycle (e.g. ``2027-28``) is a partition.

Partitions are dynamic: a cycle becomes one when any stored event names it
(not only ``cycle.opened``), added by the builds, the sensor and the schedule.
"""

import dagster as dg

cycles = dg.DynamicPartitionsDefinition(name="cycle")
