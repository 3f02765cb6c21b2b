"""MkDocs hooks of the bayes_nsum docs (declared in ``mkdocs.yml``; run at build time, offline).

* The spec reference (``reference/spec.md``) must equal what ``docs/gen_reference.py`` renders
  from ``bayes_nsum.spec.SCHEMA``: the build fails when it is stale.
* The command-line reference gets the ``--help`` text of every registered ``bayes-nsum``
  command, taken from the parser itself, in place of ``<!-- cli-options -->``.
* The benchmark pages (``docs/benchmarks/*.md``, written by the benchmark scripts) are added to
  the navigation and listed in place of ``<!-- benchmark-pages -->`` on the results page, so the
  site builds whether or not a benchmark has been run yet.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

from mkdocs.exceptions import PluginError

DOCS = Path(__file__).resolve().parent

#: benchmark pages the results page describes: file -> what it holds
EXPECTED_BENCHMARKS = {
    "pooled.md": "the partially pooled model against a per-area Killworth estimate on "
    "simulated Scale-of-Harm-like surveys (error of the area-level prevalences)",
    "speed.md": "sampler speed: seconds and effective samples per second for each model and "
    "backend",
    "calibration.md": "simulation-based calibration (SBC) of the Bayesian models: rank "
    "histograms and uniformity tests",
    "stan_pooled.md": "the pooled model against an independent Stan implementation of the "
    "study's model on the same simulated survey: time, ESS and accuracy per area",
    "stan_pooled_seeds.md": "the same comparison over several simulated surveys: accuracy per "
    "number of respondents per area with standard errors over surveys",
    "stan_pooled_seeds_gamma.md": "the same over surveys whose area effects follow the study's "
    "own (gamma) model",
    "latest.md": "the latest `make benchmarks` run: per model, sampling time, ESS per second and "
    "peak memory beside the previous release's, and the pooled model against the study's model "
    "in Stan on the same survey",
}


def _gen_reference():
    spec = importlib.util.spec_from_file_location("bayes_nsum_docs_gen", DOCS / "gen_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("_", " ").capitalize()


def benchmark_pages() -> list[Path]:
    """Benchmark pages present in ``docs/benchmarks`` (index first, then by name)."""
    folder = DOCS / "benchmarks"
    if not folder.is_dir():
        return []
    pages = sorted(folder.rglob("*.md"))
    return sorted(pages, key=lambda p: (p.name != "index.md", p.relative_to(folder).as_posix()))


def on_config(config, **kwargs):
    pages = [p.relative_to(DOCS).as_posix() for p in benchmark_pages()]
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and "Results" in entry:
            section = entry["Results"]
            for page in pages:
                if page not in section:
                    section.append(page)
    return config


def _cli_options() -> str:
    """``--help`` of every registered command, from :func:`bayes_nsum.cli.build_parser`."""
    from bayes_nsum.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps help text at the terminal width
    try:
        parser = build_parser()
        subs = next(
            a
            for a in parser._actions
            if isinstance(a, argparse._SubParsersAction)  # noqa: SLF001
        )
        out = []
        for name, sub in subs.choices.items():
            text = sub.format_help().rstrip()
            out += [f"### `bayes-nsum {name}`", "", "```text", text, "```", ""]
        return "\n".join(out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _benchmark_list(page_dir: str) -> str:
    folder = DOCS / "benchmarks"
    present = {p.relative_to(folder).as_posix(): p for p in benchmark_pages()}
    prefix = "benchmarks/" if page_dir == "" else "../benchmarks/"
    lines = []
    for name, what in EXPECTED_BENCHMARKS.items():
        if name in present:
            lines.append(f"- [{_title(present[name])}]({prefix}{name}): {what}.")
        else:
            lines.append(
                f"- *{name} has not been generated in this checkout* ({what}); "
                "run `make benchmarks` to produce it."
            )
    for name, path in present.items():
        if name not in EXPECTED_BENCHMARKS and name != "index.md":
            lines.append(f"- [{_title(path)}]({prefix}{name})")
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files, **kwargs):
    src = page.file.src_uri
    if src == "reference/spec.md":
        expected = _gen_reference().render_spec_reference()
        if markdown.strip() != expected.strip():
            raise PluginError(
                "docs/reference/spec.md is out of date with bayes_nsum.spec.SCHEMA: run "
                "`python docs/gen_reference.py`"
            )
    if "<!-- cli-options -->" in markdown:
        markdown = markdown.replace("<!-- cli-options -->", _cli_options())
    if "<!-- benchmark-pages -->" in markdown:
        page_dir = str(Path(src).parent) if "/" in src else ""
        markdown = markdown.replace("<!-- benchmark-pages -->", _benchmark_list(page_dir))
    return markdown
