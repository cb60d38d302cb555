"""The verifier, offline: a run's evidence (hist stacks, System.map, vmlinux facts) read from its results folder
(evidence.py), each documented chain judged line by line (chains.py over stacks.py), pointers resolved from the
run (pointers.py), what the kernel does instead (instead.py, replacements.py), the function graph as a second
witness (graph.py parses it, witness.py judges edges), the probe windows' coverage (coverage.py), `inv
chains.check` (chaincheck.py) and `inv lab.verify` (reverify.py). The hist file parser is here too (hist.py).

May import: config, results, vmlinux and the shared modules; never lab, probes, vm or the CLI (it reads runs, it
does not make them).
"""
