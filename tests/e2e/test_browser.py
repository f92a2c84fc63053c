"""The app in a real headless Chromium (Debian's package, driven by Playwright through executable_path):
every page opens without an error box, and training on synthetic data from the Train page works."""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"": "AFM Explorer", "Train": "Train", "Instance_explorer": "Instance explorer", "FM_vs_AFM": "FM vs AFM",
         "Attention_across_datasets": "Attention across datasets", "Planted_interactions": "Planted interactions",
         "Which_interactions_matter": "Which interactions matter?", "Published_results": "Published results"}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed here "
                                                          "(.ci/run installs it with apt-get where it can)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "AFM_MODELS_DIR": str(tmp_path_factory.mktemp("models"))}
    # The server's log goes to a file: a pipe nobody reads fills at 64 KB and then blocks the server mid-walk.
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    log = open(log_path, "wb")
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                "--server.address", "127.0.0.1", "--server.port", str(port)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if time.time() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"streamlit did not become healthy: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:  # a busy machine: a run still in flight delays the shutdown
        process.kill()
        process.wait(10)
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser):
    return browser.new_page(viewport={"width": 1400, "height": 1000})


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("AFM_SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def settle(page, timeout=120):
    """Wait until Streamlit has finished running the script: no running indicator for 1.5 s."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    quiet, deadline = 0, time.time() + timeout
    while quiet < 3:
        running = page.locator('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stSpinner"]').count()
        quiet = 0 if running else quiet + 1
        assert time.time() < deadline, "the app kept running"
        page.wait_for_timeout(500)


def assert_no_error(page, where):
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()}"


@pytest.mark.parametrize("path, title", PAGES.items())
def test_every_page_opens_without_error(server, page, shots, path, title):
    page.goto(f"{server}/{path}")
    page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    settle(page)
    assert_no_error(page, path or "home")
    page.screenshot(path=str(shots / f"{path or 'home'}.png"), full_page=True)
    if path in ("", "Instance_explorer", "FM_vs_AFM", "Planted_interactions", "Which_interactions_matter"):
        assert page.locator(".js-plotly-plot, [data-testid='stLatex'], .katex").count() > 0
    if path == "Planted_interactions":  # the default experiment is the shipped models': explained at once
        page.get_by_text("Planted pairs in AFM").first.wait_for(timeout=60_000)
        assert_no_error(page, "planted, shown")


def test_training_from_the_train_page(server, page, shots):
    page.goto(f"{server}/Train")
    settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("saved as").wait_for(timeout=120_000)
    settle(page)
    assert_no_error(page, "train")
    page.screenshot(path=str(shots / "train-finished.png"), full_page=True)
    page.get_by_role("button", name="Explain it: select it in the sidebar").click()
    settle(page)
    page.screenshot(path=str(shots / "train-selected.png"), full_page=True)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_html()
    model = sidebar.split(">Model<")[1].split(">Baseline<")[0]  # the Model box, as drawn
    assert "synthetic · FM · " in model and "shipped" not in model  # the new model, by a name a person reads
    assert "synthetic-fm-20" not in sidebar  # a person reads, no time stamp and hash; the pages now explain it


def upload_on_the_train_page(server, page, path) -> None:
    """Open the Train page, choose "your CSV file" and upload `path`, as a user would."""
    page.goto(f"{server}/Train")
    settle(page)
    page.get_by_text("your CSV file").click()
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(path))
    settle(page)


UPLOAD_PROBLEMS = {  # the bad-input corpus, uploaded through the Train page as a user would
    "nan_target.csv": "not a finite number", "inf_feature.csv": "is infinite", "single_row.csv": "1 data row(s)",
    "one_field.csv": "1 feature column(s)", "duplicate_headers.csv": "duplicate column name",
    "header_only.csv": "0 data row(s)",
}


@pytest.mark.parametrize("name, message", UPLOAD_PROBLEMS.items())
def test_a_bad_upload_gets_a_readable_message_and_the_app_keeps_working(server, page, shots, name, message):
    upload_on_the_train_page(server, page, ROOT / "tests/data/bad" / name)
    alerts = page.locator('[data-testid="stAlertContentError"]')
    alerts.first.wait_for(timeout=60_000)
    assert message in alerts.first.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(shots / f"upload-{name}.png"), full_page=True)
    page.get_by_role("link", name="Home").first.click()  # the app still works after the refusal
    page.get_by_role("heading", name="AFM Explorer").first.wait_for(timeout=60_000)
    settle(page)
    assert_no_error(page, f"home after {name}")


def test_a_good_upload_offers_its_columns(server, page, tmp_path):
    rng = np.random.default_rng(0)
    csv = tmp_path / "clicks.csv"
    pd.DataFrame({"site": rng.choice(["a", "b", "c"], 200), "hour": rng.integers(0, 24, 200),
                  "clicked": rng.integers(0, 2, 200)}).to_csv(csv, index=False)
    upload_on_the_train_page(server, page, csv)
    assert_no_error(page, "good upload")
    assert page.get_by_text("Target column").count() > 0
    # what was decided about each column is said, and the types can be chosen
    page.get_by_text("column 'hour': numeric, 24 values cut into", exact=False).first.wait_for(timeout=60_000)
    assert page.get_by_text("Column types", exact=False).count() > 0


def test_importing_a_pytorch_fm_model_from_the_train_page(server, page, shots, tmp_path):
    pytest.importorskip("torchfm", reason="pytorch-fm is in requirements-bench.txt")
    import torch
    from torchfm.model.afm import AttentionalFactorizationMachineModel

    from afm.data import make_synthetic
    from afm.store.importers import field_vocabularies

    sizes = [len(v) for v in field_vocabularies(make_synthetic())]
    torch.manual_seed(0)
    torch.save(AttentionalFactorizationMachineModel(sizes, 8, 4, (0.0, 0.0)).state_dict(), tmp_path / "afm.pt")
    page.goto(f"{server}/Train")
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(tmp_path / "afm.pt"))
    settle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported an AFM").wait_for(timeout=120_000)
    settle(page)
    assert_no_error(page, "import")
    assert page.get_by_text("dropped afm.projection.bias").count() > 0
    page.screenshot(path=str(shots / "import-finished.png"), full_page=True)


def full_page_shot(page, path: Path, width: int) -> None:
    """The whole page, not the first screen: Streamlit scrolls an inner container, so the window is made as
    tall as its content first."""
    height = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], section')]"
                           ".map(e => e.scrollHeight))")
    page.set_viewport_size({"width": width, "height": min(int(height) + 40, 16000)})
    page.wait_for_timeout(600)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": 900})


CHART_TITLES = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map(chart => {
    const box = chart.closest('[data-testid="stElementContainer"]');
    const title = box && box.previousElementSibling;
    const t = title ? title.getBoundingClientRect() : null, c = chart.getBoundingClientRect();
    const bar = chart.querySelector('.modebar-container');
    const b = bar ? bar.getBoundingClientRect() : null;
    return {inside: [...chart.querySelectorAll('.gtitle')].filter(e => e.textContent.trim()).length, text: title ? title.textContent : '',
            left: t && t.left, right: t && t.right, bottom: t && t.bottom, chart_top: c.top, chart_width: c.width,
            bar_top: b && b.height ? b.top : null};
})"""


@pytest.mark.parametrize("width", [1440, 390])
def test_every_page_at_desktop_and_phone_width_with_its_chart_titles_in_view(server, browser_page, shots, width):
    """A walk of every page, full-page screenshots kept (AFM_SCREENSHOT_DIR); every chart's title is drawn above
    the chart, inside the window and clear of Plotly's toolbar (at 390 px the toolbar covered every title)."""
    page = browser_page(width)
    for path, title in PAGES.items():
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
        settle(page)
        assert_no_error(page, f"{path or 'home'} at {width} px")
        charts = page.evaluate(CHART_TITLES)
        for chart in charts:
            assert chart["inside"] == 0, f"{path}: a title drawn inside a chart, under its toolbar"
            assert chart["text"].strip(), f"{path}: a chart without a title above it"
            assert 0 <= chart["left"] and chart["right"] <= width + 1, f"{path}: {chart['text']!r} is cut at {width} px"
            assert chart["bottom"] <= chart["chart_top"] + 1 and (chart["bar_top"] is None
                                                                  or chart["bar_top"] >= chart["bottom"] - 1)
        if path in ("", "Instance_explorer", "FM_vs_AFM", "Planted_interactions", "Which_interactions_matter"):
            assert charts, f"{path}: no chart"
        full_page_shot(page, shots / f"walk-{width}-{path or 'home'}.png", width)


@pytest.fixture(scope="module")
def browser_page(browser):
    """A page of a given width of its own (the module's page keeps its width)."""
    pages = {}

    def at(width: int):
        if width not in pages:
            pages[width] = browser.new_page(viewport={"width": width, "height": 900})
        return pages[width]

    return at


def test_home_names_the_planted_pairs(server, page):
    page.goto(server)
    headline = page.locator("h4").filter(has_text="strongest interactions").first
    headline.wait_for(timeout=120_000)
    assert "app_category x daytime and user_group x weather, are exactly the pairs planted in this data" in \
        headline.inner_text()
    settle(page)
    legend = page.locator('[data-testid="stPlotlyChart"]').first.inner_text()
    assert "planted in the data" in legend  # the planted pairs have their own colour, named


def test_fm_vs_afm_on_other_data_shows_no_frappe_number(server, page):
    page.goto(f"{server}/FM_vs_AFM")
    page.get_by_role("heading", name="FM vs AFM").first.wait_for(timeout=120_000)
    settle(page)
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "On the test split, AFM is better than FM by RMSE" in text
    assert "frappe" not in text.lower() and "tuned FM" not in text


def test_an_upload_with_an_index_column_trains_without_it_and_says_so(server, page, shots, tmp_path):
    from test_newcomer import titanic_like

    csv = titanic_like(tmp_path / "titanic.csv")
    upload_on_the_train_page(server, page, csv)
    for name in ("Unnamed: 0", "PassengerId", "Name"):
        page.get_by_text(f"Left out '{name}'", exact=False).first.wait_for(timeout=60_000)
    assert page.get_by_text("titanic: 5 fields", exact=False).count() > 0  # Pclass, Sex, Age, Fare, Embarked
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("saved as").wait_for(timeout=180_000)
    settle(page)
    assert_no_error(page, "titanic trained")
    page.screenshot(path=str(shots / "titanic-trained.png"), full_page=True)


def test_a_slider_move_stops_the_previous_planted_run(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # a session of its own
    page.goto(f"{server}/Planted_interactions")
    page.get_by_text("Planted pairs in AFM").first.wait_for(timeout=120_000)  # the shipped default, at once
    settle(page)
    slider = page.locator('[data-testid="stSlider"] input[type="range"]').first  # strength
    for _ in range(2):  # two moves: the first starts a run, the second makes it stale
        slider.focus()
        slider.press("ArrowRight")
        page.wait_for_timeout(1500)
    page.get_by_text("The run for the previous setting (strength 1.1", exact=False).first.wait_for(timeout=60_000)
    assert page.get_by_text("only the newest setting trains", exact=False).count() > 0


def test_stop_acts_within_two_seconds(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # a session of its own: synthetic data
    page.goto(f"{server}/Train")
    settle(page)
    page.get_by_text("Hyperparameters").first.click()
    for name, value in (("epochs", "2000"), ("patience", "0")):  # a long run: no early stopping
        box = page.get_by_label(name, exact=True).first
        box.fill(value)
        box.press("Enter")
        settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(re.compile(r"epoch \d+ of 2000")).first.wait_for(timeout=120_000)  # it runs
    page.get_by_role("button", name="Stop and keep the best epoch").click()
    said = page.get_by_text("Stop acted", exact=False).first
    said.wait_for(timeout=120_000)
    seconds = float(said.inner_text().split("Stop acted ")[1].split(" s ")[0])
    print(f"stop acted after {seconds} s")
    assert seconds < 2.0, said.inner_text()
    assert page.get_by_text("saved as").count() > 0


@pytest.mark.parametrize("label", ["DeepFM", "AutoInt"])
def test_a_deepfm_and_an_autoint_train_and_every_page_explains_them(server, browser, shots, label):
    """Trained from the Train page like any model, then explained on every page: the function-level heatmap
    and the waterfall's non-additive bar; AutoInt's attention per layer and head."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # a session of its own
    page.goto(f"{server}/Train")
    settle(page)
    page.locator('[data-testid="stRadio"]').filter(has_text=label).get_by_text(label, exact=True).click()
    settle(page)
    page.get_by_text("Hyperparameters").first.click()
    box = page.get_by_label("epochs", exact=True).first
    box.fill("2")
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("saved as").wait_for(timeout=180_000)
    settle(page)
    page.get_by_role("button", name="Explain it: select it in the sidebar").click()
    settle(page)
    for path in ("Instance_explorer", "FM_vs_AFM", "Attention_across_datasets", "Which_interactions_matter"):
        page.locator('[data-testid="stSidebarNav"]').get_by_text(PAGES[path], exact=True).click()  # this session
        settle(page, timeout=240)
        assert_no_error(page, f"{label} {path}")
        if path == "Instance_explorer":
            text = page.locator('[data-testid="stMain"]').inner_text()
            assert "function-level interaction at this instance" in text and "non-additive part" in text
            assert ("Self-attention over fields, per layer and head" in text) == (label == "AutoInt")
            page.screenshot(path=str(shots / f"instance-{label.lower()}.png"), full_page=True)
    page.close()
