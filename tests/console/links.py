"""Reading links out of console pages, and following them all."""

from __future__ import annotations

from collections import deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlparse

import httpx


class PageLinks(HTMLParser):
    """The href and src attributes of a page, and its element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)


def parse(html: str) -> PageLinks:
    """The links and ids of one page."""
    parser = PageLinks()
    parser.feed(html)
    return parser


def crawl(base: str, start: str, headers: dict[str, str] | None = None) -> set[str]:
    """Follow every same-site link from `start`; assert each answers below 400 and each
    #fragment names an element of its page. Returns the paths seen."""
    seen: dict[str, PageLinks] = {}
    queue = deque([start])
    fragments: list[tuple[str, str, str]] = []
    with httpx.Client(base_url=base, timeout=30, headers=headers or {}) as http:
        while queue:
            path = queue.popleft()
            if path in seen:
                continue
            response = http.get(path)
            assert response.status_code < 400, f"{path}: {response.status_code}"
            if not response.headers["content-type"].startswith("text/html"):
                seen[path] = PageLinks()
                continue
            seen[path] = links = parse(response.text)
            for link in links.links:
                target, fragment = urldefrag(urljoin(base + path, link))
                assert urlparse(target).netloc == urlparse(base).netloc, f"{path}: {link}"
                target_path = urlparse(target).path or "/"
                if fragment:
                    fragments.append((path, target_path, fragment))
                if target_path not in seen:
                    queue.append(target_path)
    for page, target, fragment in fragments:
        assert fragment in seen[target].ids, f"{page} links to {target}#{fragment}: no such id"
    return set(seen)
