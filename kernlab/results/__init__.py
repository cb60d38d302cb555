"""The results folder's contract: one model per file a run writes (schema.py: manifest, summary, workloads;
chainrecords.py: chains.json, which is also what the verifier returns; evidencerecords.py: branches, the function
graph, the probe set; sweeprecords.py: sweep plans, aggregates, the observer effect; guest.py: what the guest
brought up), the one reader and writer of them (folder.py), the seal (seal.py), and what is computed from
records alone: noise (stats.py), repeats as one aggregate (aggregate.py), two runs compared (compare.py).

May import: config and the shared modules. Everything above reads runs through this package.
"""
