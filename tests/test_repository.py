"""Properties of the repository itself: pins agree, the CI script runs the README's command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.match(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def constraints() -> dict[str, str]:
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def test_environment_yml_pins_the_same_versions(constraints):
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = _pins(pip_block)
    assert env_pins, "environment.yml pins no package"
    differing = {k: (v, constraints.get(k)) for k, v in env_pins.items() if constraints.get(k) != v}
    assert not differing, f"environment.yml and constraints.txt disagree: {differing}"


def test_every_dependency_is_pinned(constraints):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    unpinned = sorted({_requirement_name(s) for s in specs} - set(constraints))
    assert not unpinned, f"dependencies without a pin in constraints.txt: {unpinned}"


def test_jupyter_book_is_pinned_below_two(constraints):
    assert constraints["jupyter-book"].split(".")[0] == "1"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE), ".ci/run must call `make test`"


def test_toc_lists_existing_files():
    for toc_name in ("_toc.yml", "_toc_nosolutions.yml"):
        toc_path = ROOT / toc_name
        if not toc_path.exists():
            continue
        files = re.findall(r"(?:root|file):\s*(\S+)", toc_path.read_text())
        missing = [
            f
            for f in files
            if not any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb"))
        ]
        assert not missing, f"{toc_name} lists files that do not exist: {missing}"


def test_no_network_loaders_in_course_code():
    pattern = re.compile(r"load_dataset\(|get_rdataset\(|urlopen\(|requests\.get\(")
    offenders = []
    for folder in ("mlmprimer", "book", "exercises", "solutions"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".ipynb", ".md"} and pattern.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"network data loaders found in {offenders}"


def test_tables_of_contents_are_generated_from_one_chapter_list():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "toc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
    with_solutions = (ROOT / "_toc.yml").read_text()
    without = (ROOT / "_toc_nosolutions.yml").read_text()
    assert "solutions/" in with_solutions and "solutions/" not in without
    for chapter in re.findall(r"file: book/((?!00)\d\d-[\w-]+)", with_solutions):  # 00: none
        assert with_solutions.count(f"/{chapter}\n") == 3, chapter  # book, exercises, solutions
