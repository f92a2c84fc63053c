import pytest

from afm.core.errors import DataError
from afm.data.tabular import table_columns, load_csv
from afm.store.uploads import MAX_UPLOAD_BYTES, store_upload


def test_uploads_are_stored_once_by_content_and_load(tmp_path):
    data = ("colour,size,bought\n" + "".join(f"{'rgb'[i % 3]},{i % 4},{i % 2}\n" for i in range(50))).encode()
    first = store_upload(data, "../../evil name.csv", tmp_path)
    again = store_upload(data, "../../evil name.csv", tmp_path)
    assert first == again and first.parent.parent == tmp_path and first.name == "evil_name.csv"
    assert table_columns(first) == ["colour", "size", "bought"]
    loaded = load_csv(first, "bought")
    assert loaded.num_fields == 2 and loaded.name == "evil_name"  # the user's file name, no hash in view
    other = store_upload(data + b"r,1,0\n", "evil name.csv", tmp_path)
    assert other != first and other.name == first.name and len(list(tmp_path.iterdir())) == 2


def test_too_big_or_empty_uploads_are_refused(tmp_path):
    with pytest.raises(DataError, match="over the 50 MB upload limit"):
        store_upload(b"x" * (MAX_UPLOAD_BYTES + 1), "big.csv", tmp_path)
    with pytest.raises(DataError, match="empty"):
        store_upload(b"  \n", "empty.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []
