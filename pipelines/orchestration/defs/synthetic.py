"""The synthetic label on Dagster runs: a run that read synthetic data says so in its tags.

Runs start from many places (`planning build`, the sensor, the schedule, the
UI's launchpad), and none of them knows what the store holds. So the step
that reads the data tags its own run (``SYNTHETIC_TAG``) once it knows, and
the run list, a run's page and a search by tag all show it. The assets put
``synthetic`` in their materialization metadata as well.
"""

import dagster as dg

SYNTHETIC_TAG = "planning/synthetic"


def label_run(context: dg.AssetExecutionContext, synthetic: bool) -> None:
    """Tag the run ``planning/synthetic=true`` when what it read is synthetic; a run of real data gets no tag."""
    if synthetic:
        context.instance.add_run_tags(context.run.run_id, {SYNTHETIC_TAG: "true"})
