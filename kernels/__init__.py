"""Triton kernels of gen_ext (installed as gen_ext.kernels)."""
