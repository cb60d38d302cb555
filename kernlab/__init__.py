"""kernlab: turn a kernel-internals question into a reproducible experiment.

The packages, from the bottom up (each may import only the layers below it; tests/unit/test_layers.py reads
every import and holds them to this):

    shared modules here   errors, paths, version, arch, yamlfile, cache, cacheentries, tools, progress, units,
                          frames (stack frames as ftrace prints them), bootstrap
    config                lab files, chain specs, call trees as articles publish them
    results   vmlinux     the results folder's models and files; static facts from a built kernel image
    verify    kernel  guest   the verifier (offline); kernel source, config and build; the guest image
    vm        report      QEMU, SSH and the booted guest; reports of a results folder
    probes                the instruments inside a running guest
    lab                   runs: one lab as its steps, sweeps, matrices, repeats, the observer effect, bench
    cli                   the tasks
"""

__version__ = "0.1.0"
