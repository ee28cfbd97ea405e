"""Entry point for ``python -m asrctl``, the console script and the frozen binary."""

import sys


def main() -> None:
    from asrctl.cli import run

    sys.exit(run())


if __name__ == "__main__":
    main()
