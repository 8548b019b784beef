"""Numba @njit kernels only: arrays in, arrays out, no classes, no validation.

Callers (physics/, nn/) validate every argument first; a kernel indexes without bounds checks.
"""
