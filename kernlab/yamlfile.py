"""Bounded YAML loading for lab and chain files: a size limit, an alias limit, and short error messages."""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from kernlab.errors import KernlabError

MAX_BYTES = 1 << 20  # a lab or chain file is a page or two; a megabyte is no file a person wrote
# Aliases let a few lines expand to gigabytes ("billion laughs"); real lab files use none or a few.
MAX_ALIASES = 64
MAX_MESSAGE = 300


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """A message part cut to a readable length (a value quoted in an error can be anything)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def load(text: str, source: str) -> object:
    """Parse YAML text; errors read `source: [line N: ]problem`, one line."""
    if len(text.encode()) > MAX_BYTES:
        raise KernlabError(f"{source}: {len(text.encode()):,} bytes: a lab or chain file is at most {MAX_BYTES:,}")
    try:
        aliases = sum(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader))
        if aliases > MAX_ALIASES:
            raise KernlabError(f"{source}: {aliases} YAML aliases (*name): at most {MAX_ALIASES} are allowed")
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise KernlabError(f"{source}: {where}not valid YAML: {clip(problem)}") from None


def validation_message(source: str, error: ValidationError) -> str:
    """The first problem as `source: key.path: problem`, one short line (a quoted value can be huge)."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif "input" in first and first["type"] not in ("value_error",):
        message = f"{message} (got {first['input']!r})"
    message = clip(message.removeprefix("Value error, "))
    more = len(error.errors()) - 1
    return f"{source}: {key}: {message}" + (f" (and {more} more)" if more else "")
