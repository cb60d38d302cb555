"""The results folder's JSON Schema (`inv results.schema`, shipped in docs/schema/): generated from the models,
so the shipped copy must be what this checkout generates, and every recorded real run's files must validate
against it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kernlab.paths import REPO
from kernlab.results.schemafiles import FILES, schema_name, schemas
from tests.common import FIXTURES

SHIPPED = REPO / "docs" / "schema"


def test_the_shipped_schemas_are_what_the_models_generate() -> None:
    generated = schemas()
    shipped = {path.name: json.loads(path.read_text()) for path in SHIPPED.glob("*.schema.json")}
    assert shipped.keys() == generated.keys(), "run `inv results.schema` and commit docs/schema/"
    for name, schema in generated.items():
        assert shipped[name] == schema, f"docs/schema/{name} is out of date: run `inv results.schema`"


def test_every_field_of_the_run_files_says_what_it_is() -> None:
    """A field with neither a description nor a self-explaining name in a titled model is a reader's guess."""
    manifest = schemas()["manifest.schema.json"]
    assert manifest["properties"]["failed_step"].get("description") or "failed_step" in manifest.get("description",
                                                                                                      "")
    chains = schemas()["chains.schema.json"]["$defs"]["ChainRecord"]["properties"]
    assert "commit" in chains["expect_reason"]["description"]


def recorded_files() -> list[tuple[str, Path]]:
    found = []
    for file in FILES:
        pattern = file.replace("NAME", "*")
        found += [(file, path) for path in sorted(FIXTURES.glob(f"*/{pattern}"))]
    return found


@pytest.mark.parametrize(("file", "path"), recorded_files(), ids=lambda value: str(value)[-60:])
def test_every_recorded_run_validates_against_the_shipped_schema(file: str, path: Path) -> None:
    schema = json.loads((SHIPPED / schema_name(file)).read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(json.loads(path.read_text())), key=str)
    assert not errors, f"{path.relative_to(FIXTURES)}: {errors[0].message} at {list(errors[0].path)}"


def test_a_schema_folder_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = subprocess.run([str(REPO / ".venv" / "bin" / "inv"), "results.schema", "--out", str(tmp_path / "file")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0 and "cannot write the schemas" in done.stderr
