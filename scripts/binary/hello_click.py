"""The startup floor: the smallest click app, frozen exactly like asrctl.

``python -m binary --app hello`` builds it with the same spec, the same staticx step and the same launcher
as ``dist/asrctl``; ``scripts/bench_startup.py`` compares ``asrctl --version`` against ``hello --version``.
"""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.0.0", "--version", prog_name="hello", message="%(prog)s %(version)s")
def cli() -> None:
    """Say hello."""


@cli.command()
def hello() -> None:
    """Print hello."""
    click.echo("hello")


if __name__ == "__main__":
    cli(prog_name="hello")
