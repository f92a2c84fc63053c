"""fast: the speed layer under the models: embedding and pair operations with hand-written gradients,
fused CPU kernels (numba), oneDNN matmuls, the row-only Adagrad, thread counts and allocator thresholds.
Each gives the values of the plain PyTorch operation it replaces (tests/test_ops.py, test_kernels.py).

May import: afm.core.
"""
