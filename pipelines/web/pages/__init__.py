"""The site's pages: each module's routes, collected here for the app (``pipelines.web.app``).

``public`` is for everyone; ``panel`` for the Planning Panel (and the data team); ``data_team`` for
the data team only. Each route declares its audience (``pipelines.web.audience.Page``).
"""

from __future__ import annotations

from pipelines.web.audience import Page
from pipelines.web.pages import public

ROUTES: list[Page] = [*public.ROUTES]
