"""Reading a POSTed form (``application/x-www-form-urlencoded``, what every form of the site sends).

Parsed here with the standard library, so the site needs no multipart parser: no form of it uploads a file.
The guard has checked the form's CSRF token and its size before any route reads it.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request


async def form_of(request: Request) -> dict[str, str]:
    """Each field's first value ("" for a blank one); fields not sent are absent."""
    body = await request.body()
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}
