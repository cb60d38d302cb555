"""Reports: a results folder, or several, as Markdown, self-contained HTML and PNG plots, and the same views on the
terminal. views.py and chainviews.py turn a folder (read through kernlab.results) into plain view values;
comparison.py, noise.py and across.py do so for several runs; render.py draws the views with the Jinja2
templates in templates/ (report.css inlined); terminal.py prints them with rich; plots.py makes the PNGs;
cireport.py writes JUnit XML and the GitHub job summary.

May import: verify, results, config and the shared modules; never lab, probes or vm (a report reads a run).
"""
