"""``rollout workflow show``: print a release workflow definition as text or a diagram,
checked as the daemon checks it at start-up.

It runs nothing: the engine and the loader are ``repo_daemon.workflow``'s.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("workflow")
def workflow_group() -> None:
    """Look at the release workflow definitions (schemas/workflows/)."""


@workflow_group.command("show")
@click.option(
    "--template",
    type=click.Choice(["staged", "direct"]),
    help="A shipped template (default: the configured default workflow, else staged).",
)
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A definition file of your own, checked as the daemon would.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot"]),
    default="text",
    show_default=True,
    help="Text for people, a Mermaid state diagram, or Graphviz dot.",
)
def workflow_show(template: str | None, path: Path | None, fmt: str) -> None:
    """Print a workflow: its states, its table of transitions, or a diagram of it.

    Checks the definition as the daemon does at start-up and exits 2 naming every problem.
    """
    from bridge.settings import model as settings_model
    from repo_daemon.workflow import loader, render

    if path is not None:
        definition = loader.load_file(path)
    else:
        definition = loader.load_template(template or "staged")
    # The shipped role -> RT group mapping (ROLLOUT_ROLES may change it on a running bridge).
    groups = settings_model.DEFAULT_ROLES
    click.echo(render.render(definition, fmt, groups), nl=False)
