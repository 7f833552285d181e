"""The two kinds of failure the toolkit reports.

``UserError``: something the user can fix (bad input, a missing tool, wrong
configuration).  ``InfraError``: something failed underneath (a build, a
download, a VM that did not boot).  Both carry a message meant to be printed
as one line; the command's edge (``tasks.py``) turns them into ``E: ...`` and an
exit code.
"""


class WintermuteError(Exception):
    """Base of every error the toolkit raises on purpose."""

    exit_code = 1


class UserError(WintermuteError):
    """Bad input or environment; the message says how to fix it."""

    exit_code = 1


class InfraError(WintermuteError):
    """A build, download or VM step failed; the message names its log."""

    exit_code = 2
