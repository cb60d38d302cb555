"""Reports: a lab results folder, or several from a sweep, as Markdown, self-contained HTML and PNG plots, and
the same views on the terminal.

views.py and chainviews.py turn the results folder (read through kernlab.results) into plain view values;
comparison.py does so for several runs; render.py draws the views with the Jinja2 templates in templates/
(report.css inlined); terminal.py prints them with rich.
"""
