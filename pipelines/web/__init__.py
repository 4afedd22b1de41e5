"""The web site `planning serve` renders on the server: public "You said, we did" pages for every borough,
the Planning Panel's pages and the data team's, over the published projections (docs/web.md).

The seam between its parts: every route is a ``Page`` that declares its audience (``audience.py``); the guard
refuses a request whose viewer may not see it; pages render through ``rendering.render`` into templates that
extend ``templates/base.html``.
"""
