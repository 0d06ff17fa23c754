"""Credentials in connection URLs, and how they are kept out of what the project shows.

A Redis URL may carry a password, in its user part (``redis://:secret@host:6379/0``,
``redis://user:secret@host/0``) or as a query parameter (``?password=secret``). The
project shows the online store's URL in startup lines, error messages, plans and
``GET /registry``; each of those shows `redact_url` of it, never the URL itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

REDACTED = "***"
"""What stands in for a password."""

_SECRET_PARAMETERS = frozenset({"password"})


def redact_url(url: str) -> str:
    """The URL with every password replaced by ``***``; anything else is unchanged.

    The user name stays (``redis://user:***@host/0``), a password alone becomes
    ``redis://:***@host:6379/0``, and a ``password`` query parameter becomes
    ``password=***``. Text that is not a URL (``local``, a file path) comes back as is.

    Args:
        url: a connection URL, or any setting that may be one.

    Returns:
        The URL without its secrets.
    """
    if "://" not in url:
        return url
    scheme, _, after = url.partition("://")
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = parts = None
    if parts is None or not after.startswith(parts.netloc):
        # Unparseable (an unbalanced IPv6 bracket), or parsed other than written (urlsplit
        # drops tabs and newlines): show only the scheme.
        return f"{scheme}://{REDACTED}"
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{REDACTED}@{host}"
    # Spliced into the text rather than rebuilt by urlunsplit, which would turn
    # unix:///path into unix:/path and change whatever else it normalises.
    rest = after[len(parts.netloc):]  # path, query and fragment, as written
    if parts.query:
        rest = rest.replace(f"?{parts.query}", f"?{_redacted_query(parts.query)}", 1)
    return f"{scheme}://{netloc}{rest}"


def _redacted_query(query: str) -> str:
    """The query string with the values of secret parameters replaced, the rest verbatim."""
    fields = []
    for field in query.split("&"):
        name, equals, _ = field.partition("=")
        fields.append(f"{name}={REDACTED}" if equals and name.lower() in _SECRET_PARAMETERS
                      else field)
    return "&".join(fields)
