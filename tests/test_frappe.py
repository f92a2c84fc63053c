import numpy as np
import pytest

from afm.data.frappe import NUM_FEATURES, encode_raw, find_raw_zip, load_frappe, read_raw, rebuild_train


@pytest.fixture(scope="module")
def frappe(shared_data):
    return load_frappe(shared_data)


def test_frappe_loads_with_the_papers_sizes_and_readable_names(frappe):
    assert len(frappe.splits["validation"]) == 57722
    assert len(frappe.splits["test"]) == 28860
    assert frappe.num_features == NUM_FEATURES == 5382
    assert frappe.field_names == ["user", "app", "daytime", "weekday", "isweekend", "homework", "cost",
                                  "weather", "country", "city"]
    names = frappe.feature_names
    assert names[0] == "user=0" and names[957] == "app=Any.DO To-do & Tasks List"
    assert "app=WhatsApp Messenger" in names and "weather=sunny" in names and "country=Spain" in names
    assert names[5039] == "daytime=morning"  # the first daytime value of frappe.csv sits at offset 5039
    assert len(set(names)) == len(names)  # repeated app names carry their id
    assert "reconstructed" in frappe.notes
    # Every feature of a line belongs to its own field, in field order.
    owner = frappe.feature_field
    assert all((owner[frappe.splits[s].x] == np.arange(10)).all() for s in frappe.splits)


def test_context_offsets_match_the_nfm_encoding(shared_data):
    log, _ = read_raw(find_raw_zip(shared_data / "frappe"))
    raw_x, names = encode_raw(log)
    starts = {f: next(i for i, n in enumerate(names) if n and n.startswith(f + "="))
              for f in ("daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")}
    assert starts == {"daytime": 5039, "weekday": 5046, "isweekend": 5053, "homework": 5055, "cost": 5058,
                      "weather": 5060, "country": 5069, "city": 5149}


def multiset(rows):
    values, counts = np.unique(rows, axis=0, return_counts=True)
    return values, counts


def test_rebuilt_train_has_exact_positives_and_negative_contexts(frappe, shared_data):
    log, _ = read_raw(find_raw_zip(shared_data / "frappe"))
    raw_x, _ = encode_raw(log)
    held = [(frappe.splits[s].x, frappe.splits[s].y) for s in ("validation", "test")]
    rebuilt = rebuild_train(raw_x, held)
    shipped = frappe.splits["train"]  # the team's reconstruction, made by the same rules
    assert len(rebuilt) == 202027 and int((rebuilt.y > 0).sum()) == 67604
    for a, b in zip(multiset(rebuilt.x[rebuilt.y > 0]), multiset(shipped.x[shipped.y > 0])):
        assert np.array_equal(a, b)
    context = [0, 2, 3, 4, 5, 6, 7, 8, 9]
    for a, b in zip(multiset(rebuilt.x[rebuilt.y < 0][:, context]), multiset(shipped.x[shipped.y < 0][:, context])):
        assert np.array_equal(a, b)
    # No negative app was ever used by its user, and apps are distinct within a (user, context) key.
    used = set(zip(raw_x[:, 0].tolist(), raw_x[:, 1].tolist()))
    neg = rebuilt.x[rebuilt.y < 0]
    assert not any((u, i) in used for u, i in zip(neg[:, 0].tolist(), neg[:, 1].tolist()))
    assert len(np.unique(neg, axis=0)) == len(neg)
    assert np.array_equal(rebuild_train(raw_x, held).x, rebuilt.x)  # seeded


def test_train_is_rebuilt_from_raw_when_no_train_file_exists(tmp_path, shared_data):
    (tmp_path / "frappe" / "raw").mkdir(parents=True)
    for split in ("validation", "test"):
        (tmp_path / "frappe" / f"frappe.{split}.libfm.gz").symlink_to(shared_data / "frappe" / f"frappe.{split}.libfm.gz")
    (tmp_path / "frappe" / "raw" / "Mobile_Frappe.zip").symlink_to(shared_data / "frappe" / "raw" / "Mobile_Frappe.zip")
    ds = load_frappe(tmp_path)
    assert len(ds.splits["train"]) == 202027 and "rebuilt here" in ds.notes


def test_missing_frappe_files_say_how_to_get_them(tmp_path):
    from afm.core.errors import DataError

    with pytest.raises(DataError, match="python -m afm download frappe"):
        load_frappe(tmp_path)
