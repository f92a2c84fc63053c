"""The README's result tables are generated from the committed results files and must match them."""
from afm.experiments.results import ROOT, readme_blocks, results_markdown


def test_the_readme_tables_are_what_the_results_files_give():
    blocks = readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    generated = results_markdown()
    assert blocks, "the README has no generated blocks"
    for stem, text in blocks.items():
        assert stem in generated, f"README block {stem}: no results file results/{stem}.json"
        assert text == generated[stem].strip(), f"README block {stem} differs: run python -m afm results --update-readme"
    missing = sorted(set(generated) - set(blocks))
    assert not missing, f"results files the README does not show: {missing} (add <!-- results:STEM --> blocks)"
