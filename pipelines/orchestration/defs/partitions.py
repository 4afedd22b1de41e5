"""The one partitioning of the projections: a cycle (e.g. ``2027-28``) is a partition.

Partitions are dynamic: a cycle becomes one when any stored event names it
(not only ``cycle.opened``), added by the builds, the sensor and the schedule.
"""

from collections.abc import Mapping, Sequence

import dagster as dg

cycles = dg.DynamicPartitionsDefinition(name="cycle")
PARTITION = "dagster/partition"  # the tag of a run over one cycle
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"  # a run over cycles


def cycles_of_run(tags: Mapping[str, str], order: Sequence[str]) -> list[str]:
    """The cycles a run builds, read from its tags: its one cycle, or its range in the partitions' ``order``
    (``DagsterInstance.get_dynamic_partitions``); none for a run of no cycle."""
    if (cycle := tags.get(PARTITION)) is not None:
        return [cycle]
    first, last = tags.get(RANGE_START), tags.get(RANGE_END)
    if first not in order or last not in order:
        return []
    return list(order[order.index(first):order.index(last) + 1])
