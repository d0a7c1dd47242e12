"""`explain --html`'s page in a real browser: Debian's chromium, headless, driven by Selenium.
No console error, every view drawn with the cells its report has, a hovered cell shows its exact
value, the sentence picker and the unit followed across sentences; a screenshot of each page is
kept under tmp_path. Skipped where chromium, chromedriver or selenium is absent (.ci/run installs
them)."""

import importlib.util
import shutil

import pytest

from rnnkit.report.html import page
from rnnkit.tasks.explaining import explain
from test_explain_html import trained

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
MISSING = (
    "no chromium here (apt-get install chromium chromium-driver)"
    if CHROMIUM is None or DRIVER is None
    else 'no selenium here (pip install -e ".[html]")'
    if importlib.util.find_spec("selenium") is None
    else None
)
pytestmark = [pytest.mark.browser, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)  # fmt: skip


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # Debian's, and its driver: Selenium Manager looks nothing up
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=options, service=Service(DRIVER))
    d.set_window_size(1400, 1000)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory, device):
    """A seeds'-cell tagger's page of two sentences, and a bidirectional LSTM classifier's."""
    folder = tmp_path_factory.mktemp("pages")
    tagger = trained("tag", "rnn", False, tmp_path_factory.mktemp("tag"), device)
    classifier = trained("classify", "lstm", True, tmp_path_factory.mktemp("classify"), device)
    tagged = {"reports": [explain(tagger, "The movie was great ."), explain(tagger, "A waste of the time .")]}
    classified = explain(classifier, "the plot was very boring .")
    out = {}
    for name, data in (("tag", tagged), ("classify", classified)):
        path = folder / f"{name}.html"
        path.write_text(page(data, name), encoding="utf-8")
        out[name] = (path, data)
    return out


def opened(driver, path):
    driver.get(path.as_uri())
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def cells(driver, view: str) -> int:
    return driver.execute_script(f"return document.querySelectorAll('[data-view=\"{view}\"] .cell').length")


@pytest.mark.parametrize("name", ["tag", "classify"])
def test_every_view_renders_with_no_console_error(driver, pages, name, tmp_path):
    path, data = pages[name]
    assert opened(driver, path) == []
    report = data.get("reports", [data])[0]
    T, units = len(report["row"]), len(report["states"][0])
    assert cells(driver, "states") == T * units
    assert cells(driver, "connectivity") == len(report["connectivity"]) * T
    assert cells(driver, "probabilities") == len(report["probabilities"]["labels"]) * T
    assert cells(driver, "predictions") == 3 * T if name == "tag" else 2 * T  # top 3, of two labels
    for gate in (report["gates"] or {"values": {}})["values"]:
        assert cells(driver, f"gate-{gate}") == T * units
    if report["gradient_flow"]["G"] is not None:
        assert cells(driver, "flow") == T * T
    assert driver.execute_script("return document.querySelectorAll('svg').length") >= 5
    driver.set_window_size(1400, driver.execute_script("return document.body.scrollHeight") + 40)
    assert driver.save_screenshot(str(tmp_path / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def test_hovering_a_cell_shows_its_exact_value(driver, pages):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path, data = pages["tag"]
    opened(driver, path)
    report = data["reports"][0]
    for view, row, col, value in (
        ("states", 3, 2, report["states"][2][3]),  # unit 3 at step 2 (units × steps)
        ("connectivity", 4, 1, report["connectivity"][4][1]),
    ):
        rect = driver.find_elements(By.CSS_SELECTOR, f'[data-view="{view}"] rect.cell')[row * len(report["row"]) + col]
        ActionChains(driver).move_to_element(rect).perform()
        tip = driver.find_element(By.ID, "tip")
        assert tip.is_displayed() and float(tip.text.rsplit(": ", 1)[1]) == value


def test_the_sentence_picker_switches_and_the_unit_followed_stays(driver, pages):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    path, data = pages["tag"]
    opened(driver, path)
    first, second = data["reports"]
    unit = driver.find_element(By.ID, "unit")
    unit.clear()
    unit.send_keys("5\n")
    Select(driver.find_element(By.ID, "sentence")).select_by_index(1)
    assert len(second["row"]) != len(first["row"])
    assert cells(driver, "states") == len(second["row"]) * len(second["states"][0])
    assert driver.find_element(By.ID, "unit").get_attribute("value") == "5"
    said = driver.find_elements(By.CSS_SELECTOR, '[data-view="unit"] circle.cell')[0].get_attribute("data-tip")
    assert said.startswith("unit 5, s at ") and float(said.rsplit(": ", 1)[1]) == second["states"][0][5]
    assert opened(driver, path) == []


def test_the_page_fetches_nothing(pages):
    html = pages["classify"][0].read_text(encoding="utf-8")
    assert 'src="' not in html and "https://" not in html and "@import" not in html
