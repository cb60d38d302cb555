"""`inv lab.verify`: a run's chains verified again from its evidence, written beside the recorded verdicts (never
over them: the run's own chains.json is what the run found), and where the two differ."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from kernlab.errors import KernlabError, UsageError
from kernlab.results.chainrecords import ChainRecord, ChainsFile
from kernlab.results.folder import CHAINS, ResultsFolder

REVERIFIED = "reverified"  # the folder inside a run that a re-verification goes to, unless told where


def out_folder(results: Path, out: Path | None) -> Path:
    """Where a re-verification of the run at `results` is written: `out`, or the run's reverified/ folder."""
    folder = ResultsFolder.open(results)
    target = out if out is not None else folder.path / REVERIFIED
    if target.resolve() == folder.path.resolve():
        raise UsageError(f"--out {target}: that is the run's own folder, whose chains.json is kept as recorded")
    return target


def recorded_chains(results: Path) -> tuple[ChainsFile | None, str]:
    """The run's own verdicts, or None and why there are none to compare with (none written, or unreadable:
    a re-verification is what such a run needs, so that is no failure)."""
    try:
        chains = ResultsFolder.open(results).chains()
    except KernlabError as error:
        return None, f"the recorded verdicts cannot be read ({error})"
    return chains, "" if chains else f"no recorded {CHAINS} to compare with (the run stopped before verifying)"


def _verdict(chain: ChainRecord, with_hits: bool = True) -> str:
    holds = "holds" if chain.holds else "does not hold"
    return f"{holds}, {chain.hits:,} hits" if with_hits else holds


def _line_changes(before: ChainRecord, now: ChainRecord) -> list[str]:
    labels = {(line.number, line.text): line.label or line.verdict for line in before.lines}
    return [f"  line {line.number} {line.function or line.text}: recorded {labels[(line.number, line.text)]!r}, "
            f"now {line.label or line.verdict!r}" for line in now.lines
            if (line.number, line.text) in labels and labels[(line.number, line.text)] != (line.label or line.verdict)]


def verdict_changes(recorded: ChainsFile, now: list[ChainRecord], with_hits: bool = True) -> list[str]:
    """Where the re-verification's verdicts differ from the recorded ones: a chain's holds (and hits), then each
    line's verdict; empty when they agree. Without hits: two runs' verdicts, whose counts differ anyway."""
    before = {chain.name: chain for chain in recorded.chains}
    changes = []
    for chain in now:
        old = before.pop(chain.name, None)
        said = _verdict(chain, with_hits)
        if old is None:
            changes.append(f"{chain.name}: not among the recorded verdicts; now {said}")
            continue
        lines = _line_changes(old, chain)
        if _verdict(old, with_hits) != said or lines:
            changes.append(f"{chain.name}: recorded {_verdict(old, with_hits)}; now {said}")
            changes.extend(lines)
    changes.extend(f"{name}: recorded {_verdict(old, with_hits)}; not verified now (the lab does not name it for "
                   "this kernel)" for name, old in before.items())
    return changes


def print_changes(console: Console, recorded: tuple[ChainsFile | None, str], now: list[ChainRecord],
                  target: Path) -> None:
    """After the re-verification's verdicts: whether they agree with the recorded ones, where not, and where
    they were written."""
    chains, none_why = recorded
    changes = verdict_changes(chains, now) if chains else []
    console.print(escape(none_why or ("verdicts that differ from the recorded ones:" if changes
                                      else "every verdict as recorded")))
    for change in changes:
        console.print(escape(change))
    console.print(f"re-verification: {escape(str(target / CHAINS))} (the run's own {CHAINS} is kept as recorded)")
