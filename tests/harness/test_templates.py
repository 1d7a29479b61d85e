"""The CI templates are valid YAML and call only commands and options visionbench has."""

from __future__ import annotations

import shlex

import yaml
from typer.main import get_command

from harness.cli import app
from harness.conventions import ROOT
from harness.spec import load_specs

TEMPLATES = sorted((ROOT / "templates").glob("*.yml"))


def visionbench_calls(workflow: dict) -> list[list[str]]:
    calls = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            words = shlex.split(step.get("run", "").replace("${{", "{").replace("}}", "}"))
            if words and words[0].endswith("/visionbench"):
                calls.append(words[1:])
    return calls


def test_templates_exist_and_parse():
    assert TEMPLATES, "no templates/*.yml"
    for template in TEMPLATES:
        workflow = yaml.safe_load(template.read_text())
        assert workflow["jobs"] and visionbench_calls(workflow), f"{template.name} runs no visionbench command"


def test_templates_call_real_commands_and_topics():
    cli = get_command(app)
    for template in TEMPLATES:
        workflow = yaml.safe_load(template.read_text())
        for job in workflow["jobs"].values():
            topics = job.get("strategy", {}).get("matrix", {}).get("topic", [])
            assert set(topics) <= set(load_specs()), f"{template.name}: unknown topics {set(topics) - set(load_specs())}"
        for words in visionbench_calls(workflow):
            command = cli.commands[words[0]]  # KeyError: no such command
            options = {name for parameter in command.params for name in parameter.opts}
            used = {word for word in words[1:] if word.startswith("--")}
            assert used <= options, f"{template.name}: {words[0]} has no option(s) {used - options}"
