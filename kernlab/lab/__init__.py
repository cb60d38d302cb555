"""Runs: one lab end to end as its steps (run.py, with the run's record in recorder.py and the workloads in
workloads.py), the checks before a folder is made (preflight.py), what ran it (provenance.py), sweeps, kernel
matrices and repeats (sweep.py, experiment.py: expansion, shards, rerun pins), the observer effect (observer.py)
and the speed figures of `inv bench` (bench.py, clockcheck.py, reliability.py).

May import: every package below the CLI.
"""
