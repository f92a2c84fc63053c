"""The home page, run by Streamlit's AppTest (a real script run, no browser)."""
from streamlit.testing.v1 import AppTest

from conftest import ROOT


def test_home_page_trains_and_shows_the_planted_pairs_on_top():
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not app.exception
    assert app.title[0].value == "AFM Explorer"
    metrics = {m.label: float(m.value) for m in app.metric}
    assert metrics["AFM test RMSE"] < metrics["FM test RMSE"]
    pairs = app.dataframe[0].value
    top = {tuple(sorted(p)) for p in zip(pairs.field_a[:2], pairs.field_b[:2])}
    assert top == {("app_category", "daytime"), ("user_group", "weather")}
    status = app.dataframe[1].value
    assert list(status.name) == ["synthetic", "frappe", "movielens"]
