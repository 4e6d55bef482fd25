"""Errors that mean "the input is wrong", reported as one clear line instead of a traceback."""


class InputError(ValueError):
    """A file a user gave us is missing or wrong. The message names the file and the field."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")
