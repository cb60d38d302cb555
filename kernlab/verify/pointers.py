"""Calls through a pointer that the chain spec does not resolve (an article's `ops->rw_page` with no initializer in
its block), resolved from the run: the recorded stacks name the function that stands right below the call's
caller, and the kernel's image confirms an initialised structure sets that member to it (kernlab.vmlinux
.ops_setting: zram_devops.rw_page = zram_rw_page on 5.15). Pure but for the facts callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kernlab.config import articletree, specs
from kernlab.verify.stacks import Evidence, frames_below

CANDIDATES = 3  # the most-hit frames below the caller that are tried against the image
# (member, target) -> the initialised variables that set it, as kernlab.vmlinux.facts.OpsMember dicts
SettersFacts = Callable[[list[tuple[str, str]]], dict[str, list[dict]]]


def fact_key(member: str, target: str) -> str:
    return f"{member}={target}"


def unresolved(chain: specs.ResolvedChain) -> list[int]:
    return [index for index, line in enumerate(chain.lines) if line.function is None and line.via]


def resolve(spec: specs.ChainSpec, chain: specs.ResolvedChain, evidence: Evidence, setters: SettersFacts | None,
            version: str, arch: str) -> specs.ResolvedChain:
    """The chain again with each pointer line the run resolves given its function; unchanged when none is."""
    if setters is None or not (open_lines := unresolved(chain)):
        return chain
    wanted: dict[int, list[tuple[str, str]]] = {}
    for index in open_lines:
        caller = chain.function_above(index)
        if caller is None:
            continue
        member = articletree.member_of(chain.lines[index].via or "")
        wanted[index] = [(member, name) for name, _ in frames_below(caller, evidence).most_common(CANDIDATES)]
    facts = setters(sorted({pair for pairs in wanted.values() for pair in pairs}))
    found: dict[str, tuple[str, articletree.IndirectClaim]] = {}
    unset: list[str] = []
    for index, pairs in wanted.items():
        via = chain.lines[index].via or ""
        for member, target in pairs:
            setting = facts.get(fact_key(member, target)) or []
            if len(setting) == 1:
                record = setting[0]
                found[via] = (target, articletree.IndirectClaim(
                    call=via, ops=record["variable"], member=member,
                    why=f"found in the run: {target} stands right below {chain.function_above(index)} on the "
                        f"recorded stacks, and the kernel's image sets {record['variable']}.{member} to it"))
                break
        else:
            if pairs and all(fact_key(member, target) in facts for member, target in pairs):
                unset.append(via)  # every candidate asked of the image, none set there
    if not found and not unset:
        return chain
    resolved = spec.resolve(version, arch, pointers=found) if found else chain
    return replace(resolved, unset_pointers=tuple(unset))
