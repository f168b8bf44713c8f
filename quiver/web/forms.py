"""Reading a posted form, and what a page shows back when it is refused.

Forms are posted as ``application/x-www-form-urlencoded`` (no page uploads files),
read here with the standard library: no multipart parser is needed, and a body over
:data:`MAX_FORM` is refused before it is parsed.

A page that refuses a form renders it again from a :class:`FormState`: the values
as sent (never a password), an error per field shown next to it, and a message for
the whole form shown above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import Request

from quiver.errors import AccountError
from quiver.web.errors import BadForm

MAX_FORM = 64 * 1024
_FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the first value of each)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != _FORM_TYPE:
        raise BadForm("This page takes only forms sent by a browser.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise BadForm("The form is larger than this page takes.")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise BadForm("The form could not be read.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


@dataclass
class FormState:
    """A form as shown: ``values`` to fill in again, ``errors`` by field name and a
    ``message`` about the whole form."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None

    @classmethod
    def of(cls, fields: dict[str, str], *keep: str) -> FormState:
        """The fields named in ``keep`` as sent (list no password there)."""
        return cls(values={name: fields.get(name, "") for name in keep})

    def focus(self, name: str, first: bool = False) -> bool:
        """Whether the field ``name`` should have focus when the page opens: the first
        field with an error, else the ``first`` field of an untouched form."""
        if self.errors:
            return next(iter(self.errors)) == name
        return first

    def refuse(self, error: AccountError) -> FormState:
        """Show ``error`` next to its field, or above the form when it names none."""
        if error.field is not None:
            self.errors[error.field] = str(error)
        else:
            self.message = str(error)
        return self
