"""The web console in a real headless Chromium: every page loads without script errors,
has its heading, fits a desktop and a phone, can be walked with the keyboard, and the
registry's search hides what does not match.

One browser session serves the whole module. Screenshots of each page and viewport go to
a temporary directory, or to the directory named by FEATURESTORE_SCREENSHOTS
(`make screenshots` writes docs/screenshots/).
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser tests need chromium and chromedriver on PATH: install Debian's "
           "chromium and chromium-driver (make test does when it can)")

PAGES = {
    "overview": "/",
    "registry": "/registry",
    "lineage": "/lineage",
    "feature": "/features/user_txn/amount_sum_7d",
    "runs": "/runs",
}
DESKTOP = (1280, 900)
PHONE = (390, 844)
TABS = 4
"""How many TAB presses the keyboard test follows from the top of a page."""
_WAIT_S = 10.0
_SCREENSHOT_MAX_HEIGHT = 4000
"""Full-page screenshots stop there: a long page still gives a readable image."""
_INTERACTIVE = {"a", "input", "button", "select", "textarea", "summary"}
SEARCH_BOX = "input[type=search]"

# What the Registry page shows: every card and its feature rows, with their search words
# and whether they are rendered (the `hidden` attribute, unless a style overrides it).
_DEFINITIONS_SCRIPT = """
const shown = (element) => element.getClientRects().length > 0;
return Array.from(document.querySelectorAll('.card[data-search]')).map((card) => ({
  search: card.dataset.search,
  shown: shown(card),
  rows: Array.from(card.querySelectorAll('tr[data-search]')).map((row) => ({
    search: row.dataset.search, shown: shown(row)})),
}));
"""

# What the keyboard test reads about the focused element, in one round trip.
_FOCUS_SCRIPT = """
const element = document.activeElement;
const style = getComputedStyle(element);
const box = element.getBoundingClientRect();
return {
  tag: element.tagName.toLowerCase(),
  text: (element.innerText || element.value || '').trim(),
  href: element.getAttribute('href') || '',
  inNav: element.closest('nav') !== null,
  outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
  shadow: style.boxShadow !== 'none',
  width: box.width,
  height: box.height,
  // The browser scrolls what takes focus into view: a box outside it is hidden off-screen.
  inView: box.right > 0 && box.bottom > 0 && box.left < innerWidth && box.top < innerHeight,
};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for the module, driven by the system chromedriver (never a
    downloaded one), with the console messages of every page kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        # With the driver's path given Selenium Manager is skipped; offline makes sure.
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: FEATURESTORE_SCREENSHOTS if set, else a temporary
    directory."""
    named = os.environ.get("FEATURESTORE_SCREENSHOTS")
    directory = Path(named) if named else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def open_page(driver: WebDriver, url: str) -> list[dict]:
    """Load `url`, wait until the document is complete and return the browser console
    messages the load produced."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    WebDriverWait(driver, _WAIT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    return driver.get_log("browser")


def save_full_page(driver: WebDriver, path: Path) -> None:
    """A PNG of the whole page (up to a height limit) at the current viewport width."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"],
            "height": min(size["height"], _SCREENSHOT_MAX_HEIGHT), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def page_widths(driver: WebDriver) -> tuple[int, int]:
    """(document scroll width, viewport width): wider content means the page itself
    scrolls sideways (a wide drawing scrolling inside its own box does not count)."""
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    return widths[0], widths[1]


def severe(messages: list[dict]) -> list[str]:
    """The console messages at level SEVERE (script errors, failed requests)."""
    return [message["message"] for message in messages if message["level"] == "SEVERE"]


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_cleanly_on_a_desktop(browser: WebDriver, console_server: str,
                                         screenshot_dir: Path, page: str) -> None:
    messages = open_page(browser, console_server + PAGES[page])
    save_full_page(browser, screenshot_dir / f"{page}.png")
    assert severe(messages) == []
    headings = [h1.text.strip() for h1 in browser.find_elements(By.TAG_NAME, "h1")]
    assert len(headings) == 1 and headings[0], headings
    scroll_width, viewport_width = page_widths(browser)
    assert viewport_width == DESKTOP[0]
    assert scroll_width <= viewport_width, f"{page} is {scroll_width}px wide at 1280"


@pytest.mark.parametrize("page", PAGES)
def test_page_fits_a_phone(browser: WebDriver, console_server: str, screenshot_dir: Path,
                           page: str) -> None:
    width, height = PHONE
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    try:
        messages = open_page(browser, console_server + PAGES[page])
        save_full_page(browser, screenshot_dir / f"{page}-phone.png")
        viewport = browser.execute_script(
            "const meta = document.querySelector('meta[name=viewport]');"
            "return meta === null ? '' : meta.content")
        scroll_width, _ = page_widths(browser)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert severe(messages) == []
    # Without it a mobile browser lays the page out 980px wide and shrinks it.
    assert "width=device-width" in viewport.replace(" ", ""), \
        f'{page} needs <meta name="viewport" content="width=device-width, initial-scale=1">'
    # Wider than the phone means the page itself scrolls sideways (a mobile browser then
    # zooms out, so the phone's width is the bound, not window.innerWidth).
    assert scroll_width <= width, f"{page} is {scroll_width}px wide on a {width}px phone"


@pytest.mark.parametrize("page", PAGES)
def test_keyboard_reaches_the_navigation_first(browser: WebDriver, console_server: str,
                                               page: str) -> None:
    open_page(browser, console_server + PAGES[page])
    focused = []
    for _ in range(TABS):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focused.append(browser.execute_script(_FOCUS_SCRIPT))
    first = focused[0]
    skip_link = (first["tag"] == "a" and first["href"].startswith("#")
                 and "skip" in first["text"].lower())
    assert skip_link or first["inNav"], f"the first TAB reaches {first}"
    if skip_link:
        target = first["href"][1:]
        assert browser.find_elements(By.ID, target), f"the skip link's #{target} is missing"
    for element in focused:
        assert element["tag"] in _INTERACTIVE, element
        assert element["outline"] or element["shadow"], f"focus is invisible on {element}"
        assert element["width"] > 0 and element["height"] > 0 and element["inView"], element


def matches(search: str, query: str) -> bool:
    """Whether words match a query: every whitespace-separated term, lower-cased, is in
    them (the rule the Registry page states)."""
    return all(term in search for term in query.lower().split())


def assert_filtered(definitions: list[dict], query: str) -> None:
    """Cards show exactly when they match; in a shown card with matching feature rows,
    only those rows show (a card matched by its own words alone keeps every row)."""
    for card in definitions:
        assert card["shown"] == matches(card["search"], query), (query, card["search"])
        if not card["shown"]:
            continue
        hits = [matches(row["search"], query) for row in card["rows"]]
        for row, hit in zip(card["rows"], hits, strict=True):
            assert row["shown"] == (hit or not any(hits)), (query, row["search"])


def type_query(driver: WebDriver, query: str) -> None:
    """Replace what the search box holds with `query`, keystroke by keystroke."""
    box = driver.find_element(By.CSS_SELECTOR, SEARCH_BOX)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    if query:
        box.send_keys(query)


@pytest.mark.parametrize("query", ["amount_sum_7d", "team=risk", "sum 7d"])
def test_registry_search_hides_what_does_not_match(browser: WebDriver, console_server: str,
                                                   query: str) -> None:
    open_page(browser, console_server + PAGES["registry"])
    everything = browser.execute_script(_DEFINITIONS_SCRIPT)
    assert everything and all(card["shown"] for card in everything)
    type_query(browser, query)
    definitions = browser.execute_script(_DEFINITIONS_SCRIPT)
    assert_filtered(definitions, query)
    # The query is a real filter on the demo: some definitions stay, some go.
    assert {card["shown"] for card in definitions} == {True, False}, query
    shown = sum(card["shown"] for card in definitions)
    status = browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert status.startswith(f"{shown} of {len(definitions)} "), status
    type_query(browser, "")
    assert browser.execute_script(_DEFINITIONS_SCRIPT) == everything
    assert severe(browser.get_log("browser")) == []


def test_registry_search_hides_feature_rows(browser: WebDriver, console_server: str) -> None:
    open_page(browser, console_server + PAGES["registry"])
    type_query(browser, "amount_sum_7d")
    rows = [row for card in browser.execute_script(_DEFINITIONS_SCRIPT) if card["shown"]
            for row in card["rows"]]
    assert [row["shown"] for row in rows].count(True) >= 1
    assert not all(row["shown"] for row in rows), "no feature row was hidden"


def test_registry_search_reads_the_address(browser: WebDriver, console_server: str) -> None:
    open_page(browser, console_server + PAGES["registry"] + "?q=team%3Drisk")
    box = browser.find_element(By.CSS_SELECTOR, SEARCH_BOX)
    assert box.get_attribute("value") == "team=risk"
    assert_filtered(browser.execute_script(_DEFINITIONS_SCRIPT), "team=risk")
