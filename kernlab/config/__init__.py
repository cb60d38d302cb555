"""What the user writes, read and checked: lab files (lab.py), chain specs (specs.py) and call trees as articles
publish them (articletree.py, articleimport.py for `inv chains.import`). Pure models and parsers, no I/O beyond
reading the files.

May import: the shared modules directly in kernlab/ (errors, paths, version, arch, yamlfile, ...). Nothing else.
"""
