"""Every console page, fetched from a real `featurestore ui` process over HTTP: content,
links, assets and errors."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.console.links import crawl, parse

PAGES = ("/", "/registry", "/lineage", "/runs", "/features/user_txn/amount_sum_7d",
         "/features/user_txn/last_category", "/features/txn_context/amount_z")


def get(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, timeout=30)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_html_with_the_navigation(console_server: str, path: str) -> None:
    response = get(console_server, path)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<h1>" in page or "<h1 " in page
    for label in ("Overview", "Registry", "Lineage", "Runs"):
        assert f">{label}</a>" in page
    assert 'href="#main"' in page and 'id="main"' in page  # skip link for keyboard users


def test_no_page_loads_anything_from_another_host(console_server: str) -> None:
    for path in PAGES:
        for link in parse(get(console_server, path).text).links:
            assert not re.match(r"^(https?:)?//", link), f"{path} links outside: {link}"


def test_every_link_on_every_page_resolves(console_server: str) -> None:
    """Crawl from the overview: every same-site link answers below 400, and every
    #fragment names an element of the page it points at."""
    seen = crawl(console_server, "/")
    assert {"/registry", "/lineage", "/runs", "/features/user_txn/amount_sum_7d",
            "/features/txn_context/amount_z", "/assets/console.css",
            "/assets/console.js"} <= seen


def test_the_overview_shows_versions_freshness_and_counts(console_server: str) -> None:
    page = get(console_server, "/").text
    assert "fraud_demo" in page
    assert re.search(r"applied version</dt><dd>1\b", page)
    assert re.search(r"served version</dt><dd>1\b", page)
    assert "<code>local</code>" in page
    # user_txn materialized up to the second end, current.
    assert "2024-02-01T00:00:00" in page and ">current<" in page
    assert re.search(r'tile-number">15</span> <span class="tile-label">features', page)
    assert re.search(r'tile-number">1</span> <span class="tile-label">services', page)


def test_the_registry_lists_every_definition_with_its_search_words(
        console_server: str) -> None:
    page = get(console_server, "/registry").text
    for name in ("user", "transactions", "user_txn", "txn_context", "fraud_v1",
                 "amount_sum_7d", "last_category", "amount_z", "log_amount_now"):
        assert f">{name}<" in page or f"> {name}<" in page, name
    assert "A user&#39;s card spending." in page
    assert "team=risk" in page and "risk-team@example.com" in page
    assert 'type="search"' in page
    # The source's schema, read from the file.
    assert "<code>merchant_category</code>" in page
    # Every feature row carries its view's tags for the search box.
    rows = re.findall(r'<tr data-search="([^"]*)"', page)
    assert any("user_txn:amount_sum_7d" in row and "team=risk" in row for row in rows)


def test_the_lineage_graph_links_every_definition(console_server: str) -> None:
    page = get(console_server, "/lineage").text
    svg = page[page.index("<svg"):page.index("</svg>")]
    hrefs = set(re.findall(r'<a [^>]*href="([^"]+)"', svg))
    assert "/registry#source-transactions" in hrefs
    assert "/registry#view-user_txn" in hrefs
    assert "/features/user_txn/amount_sum_7d" in hrefs
    assert "/registry#request-view-txn_context" in hrefs
    assert "/registry#service-fraud_v1" in hrefs
    assert len([h for h in hrefs if h.startswith("/features/user_txn/")]) == 15


def test_a_feature_page_shows_definition_kernel_history_and_plots(
        console_server: str) -> None:
    page = get(console_server, "/features/user_txn/amount_sum_7d").text
    assert "<code>sum</code>" in page and "<code>amount</code>" in page
    assert "window 7d, hop" in page
    assert "<details>" in page and "def " in page  # the generated kernel, collapsed
    assert page.count('class="chart chart-histogram"') + page.count("chart-histogram") >= 1
    assert "Mean over materializations" in page
    # Two materializations of user_txn: full, then incremental.
    assert re.search(r"<td>full</td>", page) and re.search(r"<td>incremental</td>", page)


def test_a_string_feature_shows_its_most_frequent_values(console_server: str) -> None:
    page = get(console_server, "/features/user_txn/last_category").text
    assert "chart-top-values" in page
    assert "grocery" in page


def test_a_request_feature_page_says_it_has_no_stored_values(console_server: str) -> None:
    page = get(console_server, "/features/txn_context/amount_z").text
    assert "computed at lookup time" in page
    assert "user_txn.amount_std_30d" in page


def test_the_runs_page_shows_materializations_pushes_and_verify(console_server: str) -> None:
    page = get(console_server, "/runs").text
    assert len(re.findall(r'<th scope="row"><a href="/registry#view-user_txn">', page)) == 2
    assert "since 2024-01-31T00:00:00" in page
    assert re.search(r"<td>3</td>", page)  # three rows pushed in one push
    assert "verify" in page and ">passed<" in page


@pytest.mark.parametrize("path", ["/features/user_txn/nope", "/features/nope/x",
                                  "/no-such-page"])
def test_unknown_pages_are_404_pages(console_server: str, path: str) -> None:
    response = get(console_server, path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text and "Traceback" not in response.text


def test_every_asset_is_served_from_the_package(console_server: str) -> None:
    for name, kind in (("console.css", "text/css"), ("charts.css", "text/css"),
                       ("lineage.css", "text/css"), ("console.js", "javascript"),
                       ("favicon.svg", "image/svg+xml")):
        response = get(console_server, f"/assets/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert get(console_server, "/assets/../app.py").status_code == 404
