"""The guest image: a reproducible initramfs with busybox, dropbear, the workloads and per-lab keys (image.py), and
Debian packages of a foreign architecture for it (debs.py, standard library only: bootstrap uses it).

May import: config and the shared modules.
"""
