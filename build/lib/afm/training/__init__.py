"""training: the training loop, the workflows shared by the CLI, the app and the experiments (fit, save,
train a model set, load a model with its data), torchrun, and training in a background thread.

May import: afm.core, afm.fast, afm.data, afm.models, afm.store, afm.explain.
"""
