"""``python -m bottleneck.cli``: the same as the ``bottleneck`` command."""

from bottleneck.cli import main

if __name__ == "__main__":
    main()
