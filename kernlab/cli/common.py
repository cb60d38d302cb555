"""What every task shares: the context (lab, cache, console), usage errors that exit 2, number options, and the exit
code of a set of runs."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console

from kernlab.cache import Cache
from kernlab.config.lab import Lab, load_lab
from kernlab.errors import KernlabError, UsageError
from kernlab.paths import DEFAULT_LAB
from kernlab.results.folder import find_folders
from kernlab.results.sweeprecords import SweepVariant


@dataclass
class Context:
    """What every task needs: the lab, the cache, and where to print."""

    lab: Lab
    lab_path: Path
    cache: Cache
    console: Console

    @classmethod
    def create(cls, lab: str | None = None, cache: str | None = None, verbose: bool = False,
               accel: str | None = None) -> Context:
        """accel: kvm, tcg or auto over the lab's vm.accel (default: $KERNLAB_ACCEL, when set)."""
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
        # kernlab.vm.ssh turns paramiko's failures into one-line errors; unquieted, paramiko's transport thread
        # prints a traceback for every connect attempt made while the guest's dropbear is still starting.
        logging.getLogger("paramiko").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
        lab_path = Path(lab) if lab else DEFAULT_LAB
        loaded = load_lab(lab_path)
        if chosen := accel_override(accel):
            loaded = loaded.model_copy(update={"vm": loaded.vm.model_copy(update={"accel": chosen})})
        return cls(loaded, lab_path, Cache.at(cache), plain_console())


ACCELS = ("kvm", "tcg", "auto")
def accel_override(flag: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """--accel, else $KERNLAB_ACCEL, else None (the lab's vm.accel)."""
    env = os.environ if environ is None else environ
    if flag:
        if flag not in ACCELS:
            raise UsageError(f"--accel: {flag!r} is not kvm, tcg or auto")
        return flag
    value = env.get("KERNLAB_ACCEL") or None
    if value is not None and value not in ACCELS:
        raise KernlabError(f"KERNLAB_ACCEL: {value!r} is not kvm, tcg or auto")
    return value


def to_stderr(ctx: Context) -> Context:
    """The context with its messages on stderr: stdout carries only the command's answer."""
    return dataclasses.replace(ctx, console=Console(stderr=True, highlight=False, soft_wrap=True))


def count_option(flag: str, value: str | int | None, default: int, least: int) -> int:
    """A number of runs from `least` to 100 (default when not given); anything else is a usage error."""
    text = str(default if value is None else value).strip()
    if not text.isdigit() or not least <= int(text) <= 100:
        raise UsageError(f"{flag}: {value!r} is not a number of runs from {least} to 100")
    return int(text)


class Outcome(Protocol):
    """What a task's exit code is decided from: one run, a sweep variant or a verification."""

    @property
    def status(self) -> str: ...  # "complete", or how the run ended

    @property
    def expectations_met(self) -> bool | None: ...  # None: the lab expects nothing it could check


RUN_FAILED, EXPECTATION_MISSED = 1, 3  # the README's exit codes


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """1 when a run failed, 3 when a chain did not behave as the lab expects, else 0: every task that runs or
    verifies a lab decides its code here."""
    if not all(o.status == "complete" for o in outcomes):
        return RUN_FAILED
    return 0 if all(o.expectations_met is not False for o in outcomes) else EXPECTATION_MISSED


def run_folders(folder: Path, outcomes: Sequence[SweepVariant]) -> list[Path]:
    """Every run folder of a sweep, matrix or repeat set that got as far as a manifest."""
    return [run for o in outcomes if (folder / o.dir).exists() for run in find_folders(folder / o.dir)]


def plain_console() -> Console:
    """Plain output; logs and CI (not a tty) get whole tables, 120 columns wide."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)


def usage_errors_exit_2() -> None:
    """Make a usage error (unknown task or option, a missing argument) exit 2, as kernlab promises, not 1.

    invoke's Program exits 1 on every ParseError; tasks are parsed after tasks.py is loaded, so wrapping the
    parser there turns those into Exit(code=2). (Core options, parsed before tasks.py loads, still exit 1.)
    """
    from invoke.exceptions import Exit, ParseError
    from invoke.parser import Parser

    original = Parser.parse_argv
    if getattr(original, "exits_2", False):
        return

    def parse_argv(self, argv):  # noqa: ANN001, ANN202 - invoke's own signature
        try:
            return original(self, argv)
        except ParseError as error:
            raise Exit(f"usage: {error}", code=2) from None
        except ValueError:  # a number option given a word: invoke's int() raises, unwrapped
            raise Exit(f"usage: {not_a_number(list(argv))}", code=2) from None

    parse_argv.exits_2 = True  # type: ignore[attr-defined]
    Parser.parse_argv = parse_argv  # type: ignore[method-assign]


NUMBER_OPTIONS = ("--jobs",)  # the tasks' int options (kernlab.cli.tasks)
def not_a_number(argv: list[str]) -> str:
    """Which option of argv was given a value that is not a whole number."""
    for flag, value in zip(argv, argv[1:] + [""], strict=True):
        name, _, inline = flag.partition("=")
        given = inline or value
        if name in NUMBER_OPTIONS and not given.isdigit():
            return f"{name} {given!r}: not a whole number"
    return "an option that takes a whole number was given something else"


def number_option(option: str, text: str | None, kind: type) -> float | int | None:
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a {'whole ' if kind is int else ''}number") from None
    if value < 0:
        raise UsageError(f"{option} {text}: must not be negative")
    return value
