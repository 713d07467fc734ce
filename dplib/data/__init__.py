"""Datasets of the four benchmarks: loaders for the real on-disk formats, downloads with
checksums, and tiny fixtures written in those same formats for tests and the demo."""
