"""The one exception type users see: printed as one line by the CLI, exit code 2."""


class UserError(Exception):
    """An error caused by user input: printed as one line, exit code 2."""
