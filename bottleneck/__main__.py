"""``python -m bottleneck``: the same command line as ``bottleneck``."""

from bottleneck.cli import main

if __name__ == "__main__":
    main(prog_name="bottleneck")
