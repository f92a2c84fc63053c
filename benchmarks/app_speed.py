"""App latency in a real headless Chromium: from `streamlit run` to the Home page showing a trained model
explained, and page switches once models are cached. Prints medians over several rounds.

    python benchmarks/app_speed.py [--rounds 5]

Targets (issue 4): the first explained model within 30 s of start on a 2-core CPU; a page switch with a
loaded model under 1 s. Needs Debian's chromium and the playwright package.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["Train", "Instance explorer", "FM vs AFM", "Attention across datasets", "Planted interactions", "Home"]


def wait_idle(page, timeout=120.0):
    quiet, deadline = 0, time.time() + timeout
    while quiet < 2:
        busy = page.locator('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stSpinner"]').count()
        quiet = 0 if busy else quiet + 1
        if time.time() > deadline:
            raise TimeoutError("the app kept running")
        page.wait_for_timeout(100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

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
        healthy = time.perf_counter() - started
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("With this model's own numbers").wait_for(timeout=120_000)
            first = time.perf_counter() - started
            wait_idle(page)
            for title in PAGES:  # warm every cache once
                page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title).click()
                wait_idle(page)
            switches = {title: [] for title in PAGES}
            for _ in range(args.rounds):
                for title in PAGES:
                    t0 = time.perf_counter()
                    page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title).click()
                    page.get_by_role("heading", name=title if title != "Home" else "AFM Explorer").first.wait_for()
                    wait_idle(page)
                    switches[title].append(time.perf_counter() - t0)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    print(f"server_healthy_s={healthy:.2f}")
    print(f"first_explained_model_s={first:.2f} (target < 30)")
    for title, times in switches.items():
        print(f"page_switch_{title.replace(' ', '_')}_s={statistics.median(times):.2f} "
              f"(median of {len(times)}; includes ~0.2 s of idle polling; target < 1)")


if __name__ == "__main__":
    main()
