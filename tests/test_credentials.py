"""Passwords in connection URLs are redacted wherever the project shows a URL."""

from __future__ import annotations

import pytest

from featurestore.credentials import redact_url

SHAPES = [
    # Nothing secret: unchanged, byte for byte.
    ("local", "local"),
    ("data/offline.duckdb", "data/offline.duckdb"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://user@host/0", "redis://user@host/0"),
    ("redis://host/0?socket_timeout=0.2&socket_connect_timeout=1",
     "redis://host/0?socket_timeout=0.2&socket_connect_timeout=1"),
    # A password alone, a user and a password.
    ("redis://:secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("redis://user:secret@host/0", "redis://user:***@host/0"),
    ("redis://user:@host/0", "redis://user:***@host/0"),
    # Other schemes, encoded and unencoded reserved characters, IPv6.
    ("rediss://default:s%40cr%3At@cache.example.com:6380/1",
     "rediss://default:***@cache.example.com:6380/1"),
    ("redis://:se@cret@host:6379", "redis://:***@host:6379"),
    ("redis://:secret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
    ("unix://:secret@/run/redis/redis.sock?db=2", "unix://:***@/run/redis/redis.sock?db=2"),
    # A password in the query string; the other parameters stay as they were.
    ("redis://host:6379/0?password=secret&socket_timeout=0.2",
     "redis://host:6379/0?password=***&socket_timeout=0.2"),
    ("unix:///run/redis.sock?db=0&Password=secret", "unix:///run/redis.sock?db=0&Password=***"),
    ("redis://u:one@host/0?password=two", "redis://u:***@host/0?password=***"),
    # Unparseable, or parsed other than written: only the scheme is shown.
    ("redis://:secret@[::1/0", "redis://***"),
    ("redis://:sec\tret@host/0", "redis://***"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "shown"), SHAPES)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
