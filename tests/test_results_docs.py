"""The generated result tables in docs/results are what the committed results files give, one page per file."""
from afm.experiments.tables import DOCS_RESULTS, generated_page, results_markdown, write_docs


def test_every_results_file_has_its_generated_page_and_it_is_current():
    generated = results_markdown()
    assert generated, "no results file with a table"
    for stem, markdown in generated.items():
        page = DOCS_RESULTS / f"{stem}.md"
        assert page.is_file(), f"{page} is missing: run python -m afm results --update-docs"
        assert page.read_text(encoding="utf-8") == generated_page(stem, markdown), \
            f"{page} differs from results/{stem}.json: run python -m afm results --update-docs"
    stale = sorted(p.stem for p in DOCS_RESULTS.glob("*.md") if p.stem not in generated)
    assert not stale, f"generated pages without a results file: {stale}"


def test_write_docs_writes_what_the_check_reads(tmp_path):
    written = write_docs(out=tmp_path)
    assert sorted(written) == sorted(results_markdown())
    stem = written[0]
    assert (tmp_path / f"{stem}.md").read_text(encoding="utf-8").startswith("<!-- generated from results/")
