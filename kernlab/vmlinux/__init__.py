"""Static facts from a built kernel image, read without booting it: ELF symbols and sections (elfimage.py), DWARF
inline records resolving a stack frame's return site (dwarf.py), ops structures and inline trees (facts.py), and
what ftrace can hook from the mcount table (ftracesites.py).

May import: config, results and the shared modules.
"""
