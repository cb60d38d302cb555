"""The kernel: its source (source.py: Debian's linux-source, a kernel.org or local tarball checked by sha256, a
tree), its configuration from kconfigs/ fragments (kconfig.py) and its build, cached by key (build.py).

May import: config and the shared modules.
"""
