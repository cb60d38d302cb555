"""vmlinux"""
