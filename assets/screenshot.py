"""Regenerate assets/home.png, the README's screenshot of Home: `python assets/screenshot.py`.

Starts `streamlit run app.py` on a free local port with an empty models folder (so Home shows the shipped
models), opens it in Debian's Chromium through Playwright (never `playwright install`), waits for the first
chart and saves the page at 1440 x 900."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(out: Path = ROOT / "assets" / "home.png") -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("error: Debian's chromium is not installed (apt-get install chromium)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as models:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                   "--server.address", "127.0.0.1", "--server.port", str(port)], cwd=ROOT,
                                  env={**os.environ, "AFM_MODELS_DIR": models}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(180):
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(url)
                page.wait_for_selector(".js-plotly-plot", timeout=120_000)
                page.wait_for_timeout(2000)  # the chart's transition
                page.screenshot(path=str(out))
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
