"""Dagster sensors, schedules and observations of the stream (filled in by the streaming work)."""

import dagster as dg

sensors: list[dg.SensorDefinition] = []
schedules: list[dg.ScheduleDefinition] = []
jobs: list = []
