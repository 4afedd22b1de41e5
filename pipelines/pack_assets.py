"""Briefing packs as Dagster assets (filled in by the Panel-pack work)."""

import dagster as dg

assets: list[dg.AssetsDefinition] = []
jobs: list = []
