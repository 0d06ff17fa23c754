"""How `featurestore serve` treats connections: TLS, and uvicorn's limits on them.

These are settings of the process that listens, not of the application (the body size,
row and time limits are in the registry's `serving` section and apply under any ASGI
server): they go to uvicorn, for one process or for every worker alike.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featurestore.errors import InputError

TIMEOUT_KEEP_ALIVE_S = 5.0
"""Default seconds an idle keep-alive connection stays open (uvicorn's own default)."""


@dataclass(frozen=True)
class Connections:
    """TLS and connection limits of a server process (immutable, checked when made).

    Attributes:
        ssl_certfile: the certificate chain (PEM) to serve HTTPS with; None: plain HTTP.
        ssl_keyfile: the private key (PEM, not encrypted) of that certificate.
        limit_concurrency: most connections (and requests in progress) at once per
            process; past it new requests get 503. None: no cap.
        timeout_keep_alive: seconds an idle keep-alive connection is kept open.

    Raises:
        InputError: only one of the two TLS files is given, a file is missing, or the
            pair cannot be loaded (not PEM, an encrypted key, a key of another
            certificate).
    """

    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    limit_concurrency: int | None = None
    timeout_keep_alive: float = TIMEOUT_KEEP_ALIVE_S

    def __post_init__(self) -> None:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise InputError("HTTPS needs both --ssl-certfile and --ssl-keyfile (or neither, "
                             "for plain HTTP)")
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            _check_tls_files(self.ssl_certfile, self.ssl_keyfile)

    @property
    def scheme(self) -> str:
        """"https" with TLS files, else "http"."""
        return "https" if self.ssl_certfile is not None else "http"

    def uvicorn_settings(self) -> dict[str, Any]:
        """The keyword arguments of `uvicorn.run` for these settings."""
        settings: dict[str, Any] = {"limit_concurrency": self.limit_concurrency,
                                    "timeout_keep_alive": self.timeout_keep_alive}
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            settings["ssl_certfile"] = str(self.ssl_certfile)
            settings["ssl_keyfile"] = str(self.ssl_keyfile)
        return settings


def _check_tls_files(certfile: Path, keyfile: Path) -> None:
    """Load the pair once here, so that a bad file is one line before anything starts
    rather than a traceback in every worker."""
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not path.is_file():
            raise InputError(f"{option}: file not found: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An encrypted key would make OpenSSL prompt on the terminal; an empty password
        # makes it fail instead, with the message below.
        context.load_cert_chain(certfile, keyfile, password=lambda: b"")
    except (ssl.SSLError, ValueError) as error:
        reason = getattr(error, "reason", None) or str(error)
        raise InputError(f"cannot serve HTTPS with {certfile} and {keyfile}: {reason} (both "
                         "must be PEM, the key not encrypted and matching the "
                         "certificate)") from None
