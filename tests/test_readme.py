"""The README's set-up commands, as written: CI runs them, and a newcomer types them first."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.strip().splitlines()]


def test_the_two_setup_commands_are_the_ones_ci_runs():
    install, tests = _setup_block()
    assert install == 'pip install -e ".[dev]" && archivecolor folder examples/ --sheet'
    assert tests == "python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in ci and "python -m pytest" in ci


def test_the_first_command_colours_the_example_scans_as_written(tmp_path):
    """`archivecolor folder examples/ --sheet`, run where a fresh clone has examples/."""
    install, _ = _setup_block()
    command = install.split(" && ", 1)[1].split()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    run = subprocess.run([sys.executable, "-m", "archivecolor", *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "examples-colorized"
    assert sorted(p.name for p in out.glob("*.jpg")) == ["astronaut.jpg", "before-after.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert "before/after sheet:" in run.stderr


def test_the_quick_start_names_real_options():
    from click.testing import CliRunner

    from archivecolor.cli import main

    readme = (ROOT / "README.md").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, re.S))
    named = re.findall(r"^archivecolor (\w[\w-]*) ", blocks, re.M)
    assert named and all(name in main.commands for name in named)
    for command, option in re.findall(r"`archivecolor (\w[\w-]*) [^`]*?(--[\w-]+)", readme):
        help_text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
        assert option in help_text, f"{command} {option}"


def test_relative_links_in_the_documentation_lead_to_files():
    """A newcomer follows README → docs/ → train/; a moved or misspelt page must not leave a dead link."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "train").glob("*.md"))]
    dead = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the same page
            if not (page.parent / target.split("#")[0]).exists():
                dead.append(f"{page.relative_to(ROOT)}: {target}")
    assert not dead, dead
