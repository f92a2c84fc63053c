"""store: what is kept on disk: model directories (safetensors + JSON), model sets, the registry of saved
models, uploads, and models imported from other libraries.

May import: afm.core, afm.fast, afm.data, afm.models.
"""
