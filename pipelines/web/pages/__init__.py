"""The site's pages: each module's routes, collected here for the app (``pipelines.web.app``).

``public`` is for everyone; ``tables`` and ``panel`` for the Planning Panel (and the data team);
``data_team`` for the data team only. Each route declares its audience (``pipelines.web.audience.Page``).
"""

from __future__ import annotations

from pipelines.web.audience import Page
from pipelines.web.pages import data_team, panel, public, tables

ROUTES: list[Page] = [*public.ROUTES, *panel.ROUTES, *tables.ROUTES, *data_team.ROUTES]
