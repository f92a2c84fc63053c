"""The app's latency in a real headless Chromium (Debian's chromium, driven by Playwright): from `streamlit
run` to the Home page showing a trained model explained, then page switches with the models cached."""
from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from afm.core.errors import AFMError

ROOT = Path(__file__).resolve().parents[2]
NAVIGATION = '[data-testid="stSidebarNav"] a'  # the page list app.py gives st.navigation


def _wait_idle(page, timeout=120.0):
    quiet, deadline = 0, time.time() + timeout
    while quiet < 2:
        busy = page.locator('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stSpinner"]').count()
        quiet = 0 if busy else quiet + 1
        if time.time() > deadline:
            raise TimeoutError("the app kept running")
        page.wait_for_timeout(100)


def _first_chart(page, timeout: float = 120.0) -> None:
    """Until Home's first real chart is drawn: the lesson is said and the placeholder has been replaced."""
    page.locator("h4").filter(has_text="strongest interactions").first.wait_for(timeout=timeout * 1000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=timeout * 1000)
    deadline = time.time() + timeout
    while page.get_by_text("Computing...").count() and time.time() < deadline:
        page.wait_for_timeout(50)


TRAINING_EPOCH = re.compile(r"epoch (\d+) of 2000")


def _training_epochs_per_second(page, base: str, seconds: float) -> float:
    """Epochs a second of the Train page's default run (FM on the synthetic data, no early stopping) while
    the page watches it, as a user does: the page redraws twice a second in the same process."""
    page.goto(f"{base}/Train")
    _wait_idle(page)
    page.get_by_text("Hyperparameters").first.click()
    for name, value in (("epochs", "2000"), ("patience", "0")):
        box = page.get_by_label(name, exact=True).first
        box.fill(value)
        box.press("Enter")
        _wait_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    line = page.get_by_text(TRAINING_EPOCH).first
    line.wait_for(timeout=120_000)
    first, t0 = int(TRAINING_EPOCH.search(line.inner_text())[1]), time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    last, t1 = int(TRAINING_EPOCH.search(line.inner_text())[1]), time.perf_counter()
    page.get_by_role("button", name="Stop and keep the best epoch").click()
    page.get_by_text("saved as").first.wait_for(timeout=120_000)
    page.close()
    return (last - first) / (t1 - t0)


def _library_epochs_per_second(epochs: int = 100) -> float:
    """The same run as the Train page's default, by the library in this process, nothing watching it."""
    from afm.data.sources import load_dataset
    from afm.models import FM_KIND
    from afm.training.workflows import fit

    result = fit(load_dataset({"kind": "synthetic", "seed": 0}), FM_KIND, {"epochs": epochs, "patience": 0}).result
    return epochs / sum(row["seconds"] + row["evaluation_seconds"] for row in result.history)


def app_timings(rounds: int = 5) -> tuple[dict[str, float], float]:
    """Seconds: server healthy, first explained model, and the median switch to each page (which includes
    ~0.2 s of idle polling); and the Train page's default run, watched, as a share of the library's epochs a
    second (median of 3 runs of 10 s)."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        raise AFMError("timing the app needs Debian's chromium and the playwright package")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AFM_MODELS_DIR": tempfile.mkdtemp()}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.address", "127.0.0.1", "--server.port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        timings = {"server healthy": time.perf_counter() - started}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            context = browser.new_context(viewport={"width": 1400, "height": 1000})  # the returning visitor's
            page = context.new_page()
            opened = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            _first_chart(page)
            timings["Home: first chart, cold server"] = time.perf_counter() - opened
            timings["first explained model"] = time.perf_counter() - started
            _wait_idle(page)
            new, returning = [], []
            for _ in range(rounds):  # a warm server (its caches full): a new visitor, then one whose browser
                for times, fresh in ((new, browser.new_page(viewport={"width": 1400, "height": 1000})),  # empty cache
                                     (returning, context.new_page())):  # this browser's cached scripts
                    t0 = time.perf_counter()
                    fresh.goto(f"http://127.0.0.1:{port}/")
                    _first_chart(fresh)
                    times.append(time.perf_counter() - t0)
                    _wait_idle(fresh)
                    fresh.close()
            timings["Home: first chart, warm server, new visitor (median)"] = statistics.median(new)
            timings["Home: first chart, warm server, returning visitor (median)"] = statistics.median(returning)
            t0 = time.perf_counter()  # the teaching page, first visit: it trains FM and AFM
            page.locator(NAVIGATION).filter(has_text="Planted interactions").first.click()
            page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
            timings["planted: first chart"] = time.perf_counter() - t0
            page.get_by_text("Planted pairs in AFM").first.wait_for(timeout=300_000)
            timings["planted: default experiment explained"] = time.perf_counter() - t0
            _wait_idle(page)
            titles = [t.strip().splitlines()[-1].strip() for t in page.locator(NAVIGATION).all_inner_texts()]  # after the icon
            titles = titles[1:] + titles[:1]  # Home, the first, is timed last: leaving every other page
            for title in titles:  # warm every cache once
                page.locator(NAVIGATION).filter(has_text=title).first.click()
                _wait_idle(page)
            switches = {title: [] for title in titles}
            for _ in range(rounds):
                for title in titles:
                    t0 = time.perf_counter()
                    page.locator(NAVIGATION).filter(has_text=title).first.click()
                    page.get_by_role("heading", name=title if title != "Home" else "AFM Explorer").first.wait_for()
                    _wait_idle(page)
                    switches[title].append(time.perf_counter() - t0)
            library = _library_epochs_per_second()
            in_app = statistics.median(_training_epochs_per_second(browser.new_page(viewport={"width": 1400, "height": 1000}),
                                                                   f"http://127.0.0.1:{port}", 10.0) for _ in range(3))
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    timings.update({f"switch to {title}": statistics.median(times) for title, times in switches.items()})
    return timings, in_app / library
