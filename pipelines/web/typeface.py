"""GOV.UK Frontend without GDS Transport, the typeface only GOV.UK services may use.

The compiled stylesheet declares the font (``@font-face``) and names it first in some 60 ``font-family``
rules. An override in the site's own stylesheet was not enough: Chromium starts loading the font while it
applies the first stylesheet, before the second arrives. So the site serves the compiled stylesheet with
the declarations taken out and the family left as GOV.UK Frontend's own fallback (``arial, sans-serif``),
and serves none of the font files. A GOV.UK Frontend release that names the font some other way makes
the site refuse to start, rather than use it unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

GDS_TRANSPORT = "GDS Transport"
STYLESHEET = "govuk-frontend.min.css"
FONTS = ("assets", "fonts")
FONT_FACE = re.compile(r"@font-face\{[^{}]*font-family:\s*\"?GDS Transport\"?\s*;[^{}]*\}")
NAMED_FIRST = re.compile(r"(font-family:\s*)\"?GDS Transport\"?\s*,\s*")


class TypefaceUnknown(RuntimeError):
    """The compiled stylesheet names GDS Transport in a way this module does not take out."""


def without_gds_transport(css: str) -> str:
    """``css`` with no ``@font-face`` for GDS Transport and the family named nowhere."""
    plain = NAMED_FIRST.sub(r"\1", FONT_FACE.sub("", css))
    if GDS_TRANSPORT.lower() in plain.lower():
        raise TypefaceUnknown(f"GOV.UK Frontend's {STYLESHEET} still names {GDS_TRANSPORT} after the site took it "
                              "out: pin the govuk-frontend release in package.json, or extend pipelines/web/typeface.py")
    return plain


class GovukFiles(StaticFiles):
    """GOV.UK Frontend's ``dist/govuk``: its stylesheet without GDS Transport, and none of its font files."""

    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=directory)
        self.stylesheet = without_gds_transport((directory / STYLESHEET).read_text(encoding="utf-8"))

    async def get_response(self, path: str, scope: Scope) -> Response:
        if Path(path).parts[:2] == FONTS:  # ``path`` is normalised already, so no ``..`` gets round this
            raise HTTPException(status_code=404)
        if path == STYLESHEET:
            return Response(self.stylesheet, media_type="text/css")
        return await super().get_response(path, scope)
