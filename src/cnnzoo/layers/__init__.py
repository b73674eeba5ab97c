"""Shared building blocks (LRN, Inception modules, residual blocks), one file per kind.

Import from the defining module, e.g. ``from cnnzoo.layers.lrn import LocalResponseNorm``.
"""
