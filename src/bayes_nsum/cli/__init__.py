"""The ``bayes-nsum`` command line: one module per command, each a thin layer over the workflow.

Exit status: 0 success; 1 some sweep scenarios failed (before 3); 2 bad input (one line on
stderr, no traceback; also a sweep factor that no scenario's model uses, an output folder that
cannot be written, and a bad command line: argparse's usage and error lines); 3 a fit, sweep
scenario or compared fit whose convergence checks failed (results still written and flagged)
unless ``--allow-unconverged``; 130 interrupted (Ctrl-C: the previous results folder is left as
it was).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import BayesNsumError
from . import (
    calibrate,
    compare,
    compare_priors,
    demo,
    estimate,
    fit,
    report,
    simulate,
    sweep,
    validate,
)
from .common import EXIT_BAD_INPUT, EXIT_SCENARIOS_FAILED, EXIT_UNCONVERGED

#: every command, in the order of ``bayes-nsum --help``
COMMANDS = (
    estimate,
    validate,
    fit,
    simulate,
    demo,
    calibrate,
    sweep,
    compare_priors,
    compare,
    report,
)

__all__ = ["main", "build_parser", "EXIT_BAD_INPUT", "EXIT_UNCONVERGED", "EXIT_SCENARIOS_FAILED"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"bayes-nsum: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = _Parser(
        prog="bayes-nsum", description="Bayesian network scale-up (NSUM) estimation with PyMC"
    )
    p.add_argument("--version", action="version", version=f"bayes_nsum {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (never raises for bad input or Ctrl-C)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad command line (usage + one line)
        code = exc.code
        return 0 if code is None else code if isinstance(code, int) else EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except BayesNsumError as exc:
        print(f"bayes-nsum: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bayes-nsum: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            # output piped into e.g. `head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        # a file that vanished or could not be written mid-command: one line, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"bayes-nsum: error: {exc.strerror or _one_line(exc)}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT


#: the string-hash seed the command line runs under (see :func:`entry`)
HASH_SEED = "0"


def entry() -> None:
    """The ``bayes-nsum`` console script: :func:`main` under a fixed string-hash seed.

    Compiling a model (PyTensor's rewrites, nutpie's numba functions) visits some collections
    in string-hash order, which Python randomises per process, so the compiled log-density can
    add its terms in a different order in each new process. The draws then differ in the last
    digits, and over a long chain in the trajectory: measured on a toy PyMC model sampled
    with nutpie at one seed, different draws under ``PYTHONHASHSEED`` 1 and 2, identical under
    equal values. So that the same spec, data and seed give the same numbers in every run, the
    command re-runs itself once with ``PYTHONHASHSEED=0`` unless the variable is already set
    (the value used is recorded in ``provenance.json``). Dask workers that a sweep starts
    inherit it.
    """
    if os.environ.get("PYTHONHASHSEED") is None:
        env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}
        code = "import sys; from bayes_nsum.cli import main; sys.exit(main())"
        os.execve(sys.executable, [sys.executable, "-c", code, *sys.argv[1:]], env)
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
