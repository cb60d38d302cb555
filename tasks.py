"""kernlab's command line inside a checkout (`inv --list`); the tasks are kernlab.tasks, which the `kernlab`
command runs from any folder."""

from kernlab.cli.tasks import namespace  # noqa: F401 - invoke loads the collection from here
