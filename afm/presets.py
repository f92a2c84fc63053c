"""Hyperparameter defaults: the paper's where it gives them (Frappe, MovieLens), small and fast elsewhere.

Frappe and MovieLens follow the authors' settings (embedding size 256, Adagrad, batch 128 / 4096; AFM:
t=256, dropout 0.2, lambda 16, lr 0.015 on Frappe; t=8, dropout 0.5, lambda 2, lr 0.1 on MovieLens;
FM: lr 0.01, dropout 0.3). Other data (synthetic, libfm directories, CSV files) get settings that train
in seconds on a laptop CPU.
"""
from __future__ import annotations

_FM_PAPER = dict(embed_dim=256, dropout=0.3, lr=0.01, optimizer="adagrad", epochs=100, patience=5)
PRESETS: dict[str, dict[str, dict]] = {
    "frappe": {
        "fm": dict(_FM_PAPER, batch_size=128),
        "afm": dict(embed_dim=256, attention_factor=256, dropout=0.2, attention_dropout=0.0, l2_attention=16.0,
                    lr=0.015, optimizer="adagrad", batch_size=128, epochs=100, patience=5),
    },
    "movielens": {
        "fm": dict(_FM_PAPER, batch_size=4096),
        "afm": dict(embed_dim=256, attention_factor=8, dropout=0.5, attention_dropout=0.0, l2_attention=2.0,
                    lr=0.1, optimizer="adagrad", batch_size=4096, epochs=100, patience=5),
    },
    "default": {
        "fm": dict(embed_dim=16, dropout=0.3, lr=0.01, optimizer="adam", batch_size=256, epochs=30, patience=5),
        "afm": dict(embed_dim=16, attention_factor=16, dropout=0.2, attention_dropout=0.0, l2_attention=0.0,
                    lr=0.01, optimizer="adam", batch_size=256, epochs=30, patience=5),
    },
}
MODEL_KEYS = ("embed_dim", "attention_factor", "dropout", "attention_dropout", "attention", "learn_p")
TRAIN_KEYS = ("epochs", "batch_size", "lr", "optimizer", "l2_attention", "patience", "seed", "device")


def hyperparameters(dataset_name: str, kind: str, overrides: dict | None = None) -> dict:
    """The preset for a dataset and model kind, with every non-None override applied."""
    preset = PRESETS.get(dataset_name, PRESETS["default"])[kind]
    merged = dict(preset)
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return merged


# --quick: the same protocol at a size that runs in minutes on a 2-core CPU (tests, demos, studies).
QUICK = {
    "frappe": dict(embed_dim=64, attention_factor=64, epochs=6, batch_size=512),
    "movielens": dict(embed_dim=64, epochs=6),
    "default": dict(epochs=10),
}


def quick_overrides(dataset_name: str) -> dict:
    return dict(QUICK.get(dataset_name, QUICK["default"]))
