"""Entry point for ``python -m asrctl``, the console script and the frozen binary."""

import sys


def main() -> None:
    # First of all (before click, rich and the rest are imported): a Ctrl-C or SIGTERM from now on ends in 130/143.
    from asrctl.system.signals import after_the_end, hold_early

    hold_early()
    from asrctl.cli import run

    code = run()
    after_the_end()
    sys.exit(code)


if __name__ == "__main__":
    main()
