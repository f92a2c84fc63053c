"""Errors that carry a message meant for the user: the CLI prints them as one line, the app as text."""


class AFMError(Exception):
    """Base class: anything the user can fix (bad input, missing data, a foreign checkpoint)."""


class DataError(AFMError):
    """A data file or source is missing, malformed or inconsistent."""


class CheckpointError(AFMError):
    """A model directory is not ours, is incomplete, or does not match its config."""

