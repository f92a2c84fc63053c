"""Download code, tested offline: a server on 127.0.0.1 serves the team's copies of the public files."""
import gzip
import hashlib
import http.server
import shutil
import threading
from functools import partial

import pytest

from afm.core.errors import DataError
from afm.data.download import CATALOG, RemoteFile, download, fetch, verify


@pytest.fixture()
def mirror(tmp_path, shared_data):
    """The public file names, served from a temporary folder; train is absent (no original copy here)."""
    served = tmp_path / "served"
    served.mkdir()
    for split in ("validation", "test"):
        with gzip.open(shared_data / "frappe" / f"frappe.{split}.libfm.gz", "rb") as src:
            (served / f"frappe.{split}.libfm").write_bytes(src.read())
    shutil.copy(shared_data / "frappe" / "raw" / "Mobile_Frappe.zip", served / "Mobile_Frappe.zip")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_frappe_download_verifies_each_file_and_reports_what_failed(tmp_path, mirror):
    served, url = mirror
    data = tmp_path / "data"
    with pytest.raises(DataError) as err:
        download("frappe", data, mirror=url, report=lambda *_: None)
    assert "frappe.train.libfm" in str(err.value) and "404" in str(err.value)  # no original train copy here
    for remote in CATALOG["frappe"][1:]:
        verify(data / remote.path, remote)  # downloaded and checked
    assert not (data / "frappe" / "frappe.train.libfm").exists()
    assert not list(data.rglob("*.part"))
    # The downloaded files are what the Frappe loader reads (train rebuilt from the raw archive).
    from afm.data.frappe import load_frappe

    assert len(load_frappe(data).splits["test"]) == 28860


def test_a_tampered_file_is_refused_and_nothing_is_kept(tmp_path, mirror):
    served, url = mirror
    data = (served / "frappe.test.libfm").read_bytes()
    (served / "frappe.test.libfm").write_bytes(data.replace(b"-1 ", b"1 ", 1))
    test_file = CATALOG["frappe"][2]
    with pytest.raises(DataError, match="sha256 .* does not match the published"):
        fetch(test_file, tmp_path / "data", url=f"{url}/frappe.test.libfm")
    assert not list((tmp_path / "data").rglob("*"))[1:]  # only the empty frappe/ folder


def test_present_valid_files_are_not_fetched_again(tmp_path, mirror):
    served, url = mirror
    remote = CATALOG["frappe"][1]
    fetch(remote, tmp_path, url=f"{url}/{remote.name}")
    messages = []
    (served / remote.name).unlink()  # a second fetch would now fail
    with pytest.raises(DataError):
        download("frappe", tmp_path, mirror=url, report=messages.append)
    assert f"{remote.path}: present, checksum ok" in messages


def test_git_blob_checksums(tmp_path):
    content = b"1 2:1 3:1\r\n"
    blob = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    (tmp_path / "f.libfm").write_bytes(content)
    verify(tmp_path / "f.libfm", RemoteFile("http://x/f.libfm", "f.libfm", git_blob=blob))
    with pytest.raises(DataError, match="git blob"):
        verify(tmp_path / "f.libfm", RemoteFile("http://x/f.libfm", "f.libfm", git_blob="0" * 40))


def test_unreachable_host_is_a_clear_error(tmp_path):
    remote = CATALOG["movielens"][0]
    with pytest.raises(DataError, match="download from http://127.0.0.1:9/ml-10m.zip failed"):
        fetch(remote, tmp_path, url="http://127.0.0.1:9/ml-10m.zip", timeout=5)
