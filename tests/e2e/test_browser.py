"""The app in a real headless Chromium (Debian's package, driven by Playwright through executable_path):
every page opens without an error box, and training on synthetic data from the Train page works."""
import os
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
         "Which_interactions_matter": "Which interactions matter?"}

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
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


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
    if path == "Planted_interactions":  # its background training finishes and is explained on the page
        page.get_by_text("Planted pairs in AFM").first.wait_for(timeout=180_000)
        settle(page)
        assert_no_error(page, "planted, trained")


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
    assert "synthetic-fm-20" in sidebar  # the new model is what the pages now explain


UPLOAD_PROBLEMS = {  # the bad-input corpus, uploaded through the Train page as a user would
    "nan_target.csv": "not a finite number", "inf_feature.csv": "is infinite", "single_row.csv": "1 data row(s)",
    "one_field.csv": "1 feature column(s)", "duplicate_headers.csv": "duplicate column name",
    "header_only.csv": "0 data row(s)",
}


@pytest.mark.parametrize("name, message", UPLOAD_PROBLEMS.items())
def test_a_bad_upload_gets_a_readable_message_and_the_app_keeps_working(server, page, shots, name, message):
    page.goto(f"{server}/Train")
    settle(page)
    page.get_by_text("your CSV file").click()
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(ROOT / "tests/data/bad" / name))
    settle(page)
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
    page.goto(f"{server}/Train")
    settle(page)
    page.get_by_text("your CSV file").click()
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(csv))
    settle(page)
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
