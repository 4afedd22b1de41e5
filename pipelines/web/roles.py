"""The site's audiences and the roles an account can hold, as plain names.

Apart from ``audience`` (which routes by them) so that what only needs the names, `planning users add
--role` and the account book, does not load the web framework.
"""

from __future__ import annotations

from typing import Literal, get_args

Audience = Literal["public", "panel", "data_team"]
Role = Literal["panel", "data_team"]
AUDIENCES: tuple[Audience, ...] = get_args(Audience)
ROLES: tuple[Role, ...] = get_args(Role)
