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


def test_numbers_in_prose_that_cites_a_results_file_come_from_that_file():
    """A paragraph of README.md or docs/*.md that cites results/NAME.json (or, citing none, follows such a
    paragraph under the same heading: a reading) may quote a number (two decimals or more, or a percentage
    with a decimal) only as the generated page of a file cited there prints it, so a reading cannot drift
    from its file."""
    import re

    from afm.experiments.results import ROOT

    number = re.compile(r"(?<![\w.])[-+]?\d+\.\d+%|(?<![\w.])[-+]?\d+\.\d{2,}(?![\d%])")
    cited = re.compile(r"results/([\w.-]+)\.json")
    generated = results_markdown()
    wrong = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        section: set[str] = set()
        for paragraph in path.read_text(encoding="utf-8").split("\n\n"):
            if paragraph.lstrip().startswith("#"):
                section = set()
            section |= set(cited.findall(paragraph))
            stems = set(cited.findall(paragraph)) or section
            if not stems:
                continue
            pages = " ".join(generated.get(stem, "") for stem in stems)
            printed = set(re.findall(r"[-+]?\d+\.\d+%?", pages))
            for quoted in number.findall(paragraph):
                bare = quoted.lstrip("+-")
                if quoted not in printed and bare not in printed and f"-{bare}" not in printed and f"+{bare}" not in printed:
                    wrong.append(f"{path.name}: {quoted} (cites {', '.join(sorted(stems))})")
    assert not wrong, "numbers not in the cited files' pages:\n" + "\n".join(wrong)
