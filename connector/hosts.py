"""Host names as the network sees them: what the production lock and loopback checks compare.

``API.Trackdechets.beta.gouv.fr.`` (capitals, trailing dot), ``api。trackdechets．beta｡gouv.fr``
(ideographic and full-width dots, which HTTP clients turn into ``.``) and a full-width ``ａｐｉ``
all reach the production API. :func:`normalise_host` folds every such spelling to the one the
resolver uses, so a comparison with :data:`~connector.settings.PRODUCTION_HOST` cannot be dodged.
"""

from __future__ import annotations

import ipaddress
import unicodedata

__all__ = ["is_loopback", "normalise_host"]

_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
"""Dots that IDNA (RFC 3490 §3.1) treats as label separators."""


def normalise_host(host: str) -> str:
    """The canonical form of ``host``: NFKC, look-alike dots → ``.``, lower case, no trailing dot,
    non-ASCII labels in IDNA (``xn--``) form; IP addresses in their compressed form.

    Raises ``ValueError`` for a host no resolver would accept (empty label, ``%``, spaces...).
    """
    name = unicodedata.normalize("NFKC", host.strip().translate(_DOTS)).translate(_DOTS).lower()
    name = name.removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    name = name.rstrip(".") if name.endswith(".") and not name.endswith("..") else name
    if not name or any(not (c.isalnum() or c in "-._") for c in name):
        raise ValueError("is not a valid host name")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("is not a valid host name") from None
    if any(not label for label in ascii_name.split(".")):
        raise ValueError("is not a valid host name")
    return ascii_name.lower()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1), in any spelling."""
    try:
        name = normalise_host(host)
    except ValueError:
        return False
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
