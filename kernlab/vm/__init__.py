"""The VM: QEMU's command line and the running guest with its console watched (qemu.py), the accelerator's verdict
per host (accel.py), the host's TSC rate for TCG guests (hostclock.py), SSH into the guest (ssh.py), and a
booted guest as one context manager that always reaps (session.py).

May import: guest, config, results and the shared modules.
"""
