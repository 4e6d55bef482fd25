"""vq3d's errors: expected failures, each reported as one clear line instead of a traceback.

Every error vq3d raises on purpose derives from `VQ3DError`; its `kind` heads the line the stage
runner and the CLI print ("bad input", "download failed", ...), so neither needs to know the
modules' own error classes. Anything else escaping a stage is a bug and keeps its traceback.

Every vq3d exception pickles with its message and attributes (tests/test_errors.py checks all of
them): stages run work in process pools, and an exception that cannot be rebuilt in the parent
turns into a BrokenProcessPool "bug" that hides the real one-line reason."""


class VQ3DError(Exception):
    """Base of every vq3d error. Built from its one message (so it pickles as it is); subclasses
    taking other arguments define `__reduce__`."""

    kind = "error"  # what the one-line report calls this failure

    def __init__(self, message: str):
        super().__init__(message)


class InputError(VQ3DError, ValueError):
    """A file a user gave us is missing or wrong. The message names the file and the field."""

    kind = "bad input"

    def __init__(self, path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # the default would call InputError(str(self)) and fail
        return (type(self), (self.path, self.message), self.__dict__)


class DependencyError(VQ3DError, RuntimeError):
    """An optional package or checkout a configured backend needs is not installed; the message
    says which and how to get it (an extra, a conda env)."""

    kind = "missing dependency"
