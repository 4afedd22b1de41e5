"""Dagster definitions, one file per kind: partitions, resources, assets, checks, packs, jobs, sensors, schedules.

Imports flow one way: partitions and resources <- assets <- checks, packs <- jobs <- sensors, schedules;
``pipelines.orchestration.definitions`` gathers them.
"""
