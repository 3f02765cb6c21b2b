"""Error types. Every user-facing problem raises a subclass of :class:`BayesNsumError`.

The command line turns these into one line on stderr and exit status 2, so each message must
name the file, key, column or rows at fault. Survey rows are named by their position (row 1 is
the first respondent, line 2 of a CSV file), never by respondent id, and a message never quotes
an answer: error messages end up in logs and e-mails.
"""


class BayesNsumError(Exception):
    """Base class of every error caused by bad input (spec, data, priors, options)."""


class SpecError(BayesNsumError):
    """An analysis spec (TOML) is missing a key, has an unknown key or a bad value."""


class DataError(BayesNsumError):
    """Survey, known-size or area-table data are missing, malformed or inconsistent."""


class PriorError(BayesNsumError):
    """A prior override is malformed or names no parameter of the model."""


class OutputError(BayesNsumError):
    """An output folder cannot be created or written (checked before any work starts), or
    writing results failed (the message says where the posterior was kept)."""


def format_rows(rows, limit: int = 5) -> str:
    """Format a list of row labels for an error message: ``'3, 7, 12 (and 4 more)'``.

    Pass row positions (or group and area names), never respondent ids."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    if len(rows) > limit:
        shown += f" (and {len(rows) - limit} more)"
    return shown
