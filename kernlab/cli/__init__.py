"""The command line: tasks.py declares the `inv`/`kernlab` tasks and only parses arguments; common.py holds what every
task shares (context, usage errors, exit codes); kernel_tasks.py, lab_tasks.py and project_tasks.py do what each
task does, with its terminal output; program.py is the `kernlab` console script.

May import: everything. Nothing imports it.
"""
