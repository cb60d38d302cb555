"""kernlab: turn a kernel-internals question into a reproducible experiment."""

__version__ = "0.1.0"
