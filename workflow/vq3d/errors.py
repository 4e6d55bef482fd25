"""Errors that mean "the input is wrong", reported as one clear line instead of a traceback.

Every vq3d exception pickles with its message and attributes (tests/test_errors.py checks all of
them): stages run work in process pools, and an exception that cannot be rebuilt in the parent
turns into a BrokenProcessPool "bug" that hides the real one-line reason."""


class InputError(ValueError):
    """A file a user gave us is missing or wrong. The message names the file and the field."""

    def __init__(self, path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # the default would call InputError(str(self)) and fail
        return (type(self), (self.path, self.message), self.__dict__)


class DependencyError(RuntimeError):
    """An optional package or checkout a configured backend needs is not installed; the message
    says which and how to get it (an extra, a conda env)."""
