"""`inv chains.import ARTICLE`: the call trees of an article (Markdown, or HTML with <pre> blocks) written out as
chain specs, one per tree, each block pasted as published; the blocks that are not trees are named with why.

A block is a call tree when its first line that is neither blank nor a comment is a call (the tree's root) and
it reads as a tree (kernlab.config.articletree.parse_block). A function's body starts with its definition, a
declarations block with a declaration: neither is a call.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kernlab.cache import write_bytes_atomic
from kernlab.config import articletree, specs
from kernlab.errors import KernlabError

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
PRE = re.compile(r"<pre[^>]*>(?:\s*<code[^>]*>)?(.*?)(?:</code>\s*)?</pre>", re.S | re.I)
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
# "based on linux-5.15", "Linux 6.1", "v5.15.135": the first kernel version the article's prose names
KERNEL_NAMED = re.compile(r"(?<![A-Za-z])[Ll]inux[- ]?v?(\d+\.\d+(?:\.\d+)?)(?![\d.])")
MIN_FUNCTIONS = 2


@dataclass(frozen=True)
class ImportedBlock:
    """One code block of the article: a tree written as a spec, or skipped with why."""

    index: int  # 1-based, in the article's order
    first_line: str
    spec: Path | None = None
    why_skipped: str = ""


def code_blocks(text: str) -> list[str]:
    """Fenced Markdown blocks, else HTML <pre> blocks (tags stripped, entities decoded)."""
    fenced = [match.group(1) for match in FENCE.finditer(text)]
    if fenced:
        return fenced
    return [html.unescape(re.sub(r"<[^>]+>", "", match.group(1))) for match in PRE.finditer(text)]


def literal(key: str, text: str) -> str:
    """`key: |2` and the text byte for byte below it: YAML indents with the two spaces, and tabs after them are
    the text's own (a quoted scalar would spell them \\t)."""
    lines = text.split("\n")
    ending = "+" if text.endswith("\n\n") else "" if text.endswith("\n") else "-"
    body = lines[:-1] if text.endswith("\n") else lines
    return f"{key}: |2{ending}\n" + "".join(f"  {line}\n" if line else "\n" for line in body)


def front_matter(text: str) -> dict[str, str]:
    """`key: value` lines of a Jekyll/Hugo front matter, read line by line: blogs write lines YAML refuses
    (`description:text` with no space)."""
    match = FRONT_MATTER.match(text)
    if not match:
        return {}
    found = {}
    for line in match.group(1).splitlines():
        if pair := re.match(r"^(\w+):\s*(.*?)\s*$", line):
            found[pair.group(1)] = pair.group(2).strip("'\"")
    return found


def tree_or_why(block: str) -> str | None:
    """None when the block is a call tree, else why it is not."""
    for raw, _ in articletree.strip_comments(block.splitlines()):
        body = raw.strip()
        if not body or body.startswith(articletree.NOTE_PREFIX):
            continue
        kind, function, via, why = articletree.classify(body)
        if kind == "comment":
            continue
        if kind != "call" or via:
            return f"its first line, {body!r}, is {why or 'a call through a pointer'}: no call tree starts so"
        break
    else:
        return "no code in it"
    try:
        parsed = articletree.parse_block(block, "block")
    except KernlabError as error:
        return f"not a tree: {str(error).split(': ', 1)[-1]}"
    functions = sum(line.function is not None for line in parsed.lines)
    if functions < MIN_FUNCTIONS:
        return f"{functions} function line: a call tree has a caller and a callee at least"
    return None


def import_article(article: Path, out_dir: Path, prefix: str | None = None) -> list[ImportedBlock]:
    """Write one spec per call tree into out_dir (made if missing); an existing spec file is never overwritten."""
    try:
        text = article.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise KernlabError(f"{article}: cannot read the article: {getattr(error, 'strerror', None) or error}") \
            from None
    blocks = code_blocks(text)
    if not blocks:
        raise KernlabError(f"{article}: no code blocks (``` fences or <pre>)")
    meta = front_matter(text)
    title = str(meta.get("title") or article.stem)
    date = str(meta.get("date") or "").split(" ")[0]
    link = str(meta.get("link") or meta.get("url") or article)
    kernel = KERNEL_NAMED.search(FRONT_MATTER.sub("", text))
    stem = prefix or re.sub(r"[^a-z0-9]+", "-", article.stem.lower()).strip("-") or "article"
    results: list[ImportedBlock] = []
    planned: list[tuple[ImportedBlock, str]] = []
    for index, block in enumerate(blocks, 1):
        first = next((line.strip() for line in block.splitlines() if line.strip()), "")
        why = tree_or_why(block)
        if why:
            results.append(ImportedBlock(index, first, why_skipped=why))
            continue
        name = f"{stem}-{sum(1 for b, _ in planned) + 1}"
        path = out_dir / f"{name}.yaml"
        if path.exists():
            raise KernlabError(f"{path}: exists; remove it or import into another folder")
        document = {"name": name, "documented": f"code block {index} of the article, as published",
                    "source": f"{title}" + (f", {date}" if date else "") + f", {link}"}
        header = f"# Imported by `inv chains.import` from {article}, code block {index}.\n"
        header += f"# The article names Linux {kernel.group(1)}.\n" if kernel else ""
        planned.append((ImportedBlock(index, first, spec=path), header + yaml.safe_dump(
            document, sort_keys=False, allow_unicode=True, width=120) + literal("tree", block)))
    out_dir.mkdir(parents=True, exist_ok=True)
    for imported, content in planned:
        assert imported.spec is not None
        write_bytes_atomic(imported.spec, content.encode())
        if specs.load_chain(imported.spec).tree != blocks[imported.index - 1]:  # byte for byte, or not at all
            imported.spec.unlink()
            raise KernlabError(f"{imported.spec}: code block {imported.index} did not read back as written")
        results.append(imported)
    return sorted(results, key=lambda block: block.index)
