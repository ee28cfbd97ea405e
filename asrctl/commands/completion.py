"""``asrctl completion bash|zsh|fish``: the shell completion script, from click's own completion machinery.

The script calls asrctl back with ``_ASRCTL_COMPLETE`` set; click answers from the same command tree, so verbs,
subcommands, options (the global ones after a verb too) and choices complete without a list kept by hand.
"""

from __future__ import annotations

import click

from asrctl.commands.common import begin
from asrctl.output import Result

SHELLS = ("bash", "zsh", "fish")
INSTALL = {
    "bash": 'asrctl completion bash > /etc/bash_completion.d/asrctl      # or: eval "$(asrctl completion bash)"',
    "zsh": 'asrctl completion zsh > "${fpath[1]}/_asrctl"                # or: eval "$(asrctl completion zsh)"',
    "fish": "asrctl completion fish > ~/.config/fish/completions/asrctl.fish",
}


@click.command(
    epilog="\b\n" + "\n".join(INSTALL.values()),
)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> Result:
    """Print the completion script for SHELL on stdout (with --json: inside the result, as data.script)."""
    from click.shell_completion import get_completion_class

    app = begin(ctx)
    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is one of click's
    root = ctx.find_root()
    script = cls(root.command, {}, "asrctl", "_ASRCTL_COMPLETE").source()
    if not app.out.json_mode:
        click.echo(script, nl=not script.endswith("\n"))
    return Result(app.command, data={"shell": shell, "script": script})
