"""torch_brain 0.1.2's own test suite, from its verified sdist, with and without the plugin.

Both runs happen here, where the plugin is installed; the second one registers the
plugin's modalities first (what a plugin config's Hydra callback does before train.py
builds a model). Every test must end the same way in both, and the tests that do not pass
must be the ones docs/compatibility.md lists with their reasons.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from poyocap_plugin.workflow import trainer

DOC = Path(__file__).resolve().parents[1] / "docs" / "compatibility.md"
SUITE = f"torch_brain-{trainer.TORCH_BRAIN_VERSION}/tests/"
#: what the second run adds: the plugin's registrations, before any torch_brain test runs
REGISTER = "from poyocap_plugin.modalities import register_all\n\nregister_all()\n"


def _suite(into: Path) -> Path:
    archive = trainer.cache_dir() / f"torch_brain-{trainer.TORCH_BRAIN_VERSION}.tar.gz"
    if not archive.is_file():
        trainer.fetch_trainer()  # keeps the verified archive in the cache
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == trainer.SDIST_SHA256
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(SUITE)]
        tar.extractall(into, members=members, filter="data")
    return into / SUITE


def _outcomes(tests: Path, report: Path) -> dict[str, str]:
    """Run the suite; ``{test id: passed|failed|error|skipped}``, collection errors as files."""
    subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"]
        + ["--continue-on-collection-errors", f"--junitxml={report}"],
        cwd=tests.parent,
        capture_output=True,
        timeout=1200,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        ended = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome = {"failure": "failed"}.get(ended[0], ended[0]) if ended else "passed"
        outcomes[_test_id(tests.parent, case.get("classname"), case.get("name"))] = outcome
    return outcomes


def _test_id(root: Path, classname: str, name: str) -> str:
    """pytest's id from JUnit's dotted ``classname`` (module, then classes) and ``name``."""
    if not classname:  # a module that failed to collect: name is the dotted module
        return name.replace(".", "/") + ".py"
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        module = "/".join(parts[:end]) + ".py"
        if (root / module).is_file():
            return "::".join([module, *parts[end:], name])
    raise ValueError(f"no module of {classname!r} under {root}")


def _documented() -> dict[str, str]:
    """The doc's table of tests that do not pass: ``{test id: outcome}``."""
    rows = re.findall(r"^\| `(tests/[^`]+)` \| (\w+) \|", DOC.read_text(), flags=re.M)
    return dict(rows)


@pytest.mark.slow
def test_torch_brain_s_suite_ends_the_same_with_the_plugin_s_registrations(tmp_path):
    plain = _outcomes(_suite(tmp_path / "plain"), tmp_path / "plain.xml")
    tests = _suite(tmp_path / "plugin")
    (tests / "conftest.py").write_text(REGISTER)
    with_plugin = _outcomes(tests, tmp_path / "plugin.xml")

    assert sum(o == "passed" for o in plain.values()) > 50  # the suite really ran
    assert with_plugin == plain
    assert {t: o for t, o in plain.items() if o != "passed"} == _documented()
