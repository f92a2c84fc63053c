"""Experiments that write results files: the paper's protocol (`reproduce`), its studies, the ablation,
and the teaching experiment on planted data. `results` alone owns the results-file format."""
