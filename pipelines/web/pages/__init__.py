"""The site's pages: each module's routes, collected here for the app (``pipelines.web.app``)."""

from __future__ import annotations

from pipelines.web.audience import Page

ROUTES: list[Page] = []
