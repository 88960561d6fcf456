"""A receiver's body template: JSON with ``$name`` placeholders, each filled as a JSON string.

Values are escaped before they go in, so a department named ``"Vendas" ou "SAC"`` cannot
break the JSON or add fields to it. ``$$`` stands for a literal ``$``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping


class TemplateError(ValueError):
    """A placeholder the notification does not have, or a stray ``$``."""


def render(template: str, values: Mapping[str, str]) -> str:
    try:
        return string.Template(template).substitute(
            {name: json.dumps(value, ensure_ascii=False) for name, value in values.items()}
        )
    except KeyError as exc:
        raise TemplateError(f"no placeholder ${exc.args[0]}: use {_names(values)}") from None
    except ValueError as exc:
        raise TemplateError(f"a stray $ ({exc}); write $$ for a literal $") from None


def _names(values: Mapping[str, str]) -> str:
    return ", ".join(f"${name}" for name in values)
