"""The instruments inside a running guest, each one's guest commands beside the code that runs them: the zram and
vmstat sampler (zram.py, sampler.py, live.py), the kprobe stack histograms (kprobes.py, tracing.py), probe
windows (probewindows.py, windows.py), the function graph's capture (graphwindow.py), the branch profile
(branches.py, branchprofile.py) and what the guest brought up (guestfacts.py).

May import: vm, verify, vmlinux, results, config, kernel, guest and the shared modules; never lab or the CLI.
"""
