"""The documentation site, the notebooks and the architecture map stay true to the code.

Fast tier: the spec reference page equals what ``docs/gen_reference.py`` renders from
``bayes_nsum.spec.SCHEMA`` and lists every key; the notebooks equal what
``notebooks/build_notebooks.py`` generates and their prose holds no typed numbers;
``ARCHITECTURE.md`` lists every module and the imports follow its layers.

Slow tier: ``mkdocs build --strict`` succeeds offline and the built site loads nothing from
the network; every notebook executes (``BAYES_NSUM_NB_FAST=1``) with every shown figure's axes
labelled.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
SRC = ROOT / "src" / "bayes_nsum"
NOTEBOOK_NAMES = [
    "01_quickstart.ipynb",
    "02_scale_of_harm.ipynb",
    "03_comparing_priors.ipynb",
    "04_sensitivity.ipynb",
    "05_calibration.ipynb",
    "06_scale_of_harm_raw.ipynb",
    "07_comparing_methods.ipynb",
]
CELL_TIMEOUT_S = 600


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------
# fast: spec reference
# ---------------------------------------------------------------------------------------------


def test_spec_reference_page_matches_schema():
    gen = _load(DOCS / "gen_reference.py", "gen_reference")
    page = (DOCS / "reference" / "spec.md").read_text(encoding="utf-8")
    assert page == gen.render_spec_reference(), (
        "docs/reference/spec.md is stale: run `python docs/gen_reference.py`"
    )


def test_spec_reference_lists_every_key_once_and_nothing_else():
    """Parse the page's tables back and compare with SCHEMA, independently of the renderer."""
    from bayes_nsum.priors import FAMILIES
    from bayes_nsum.spec import SCHEMA

    page = (DOCS / "reference" / "spec.md").read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    section = None
    for line in page.splitlines():
        m = re.match(r"^## `\[(\w+)\]`$", line)
        if m:
            section = m.group(1)
            found[section] = []
            continue
        if line.startswith("## "):
            section = None
        m = re.match(r"^\| (`(\w+)`|\*\(any name\)\*) \|", line)
        if section and m:
            found[section].append(m.group(2) or "*")
    assert list(found) == list(SCHEMA)
    for sec, keys in SCHEMA.items():
        assert found[sec] == list(keys), f"[{sec}] keys on the page differ from SCHEMA"
    for family in FAMILIES:
        assert f"| `{family}` |" in page


def test_spec_reference_example_is_a_valid_spec():
    from bayes_nsum.spec import Spec

    page = (DOCS / "reference" / "spec.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", page, flags=re.S)
    assert blocks, "the spec reference has no TOML example"
    for block in blocks:
        Spec.from_dict(tomllib.loads(block))  # raises SpecError on an unknown key


# ---------------------------------------------------------------------------------------------
# fast: notebooks are generated and follow the rules
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builder():
    return _load(NOTEBOOKS / "build_notebooks.py", "build_notebooks")


def test_notebooks_are_generated_from_the_builder(builder):
    assert sorted(builder.NOTEBOOKS) == NOTEBOOK_NAMES
    for name in NOTEBOOK_NAMES:
        path = NOTEBOOKS / name
        assert path.is_file(), f"{name} missing: run notebooks/build_notebooks.py"
        assert path.read_text(encoding="utf-8") == builder.render(name), (
            f"{name} is stale: run notebooks/build_notebooks.py"
        )


def test_notebook_prose_has_no_typed_numbers(builder):
    """Numbers in a notebook's text must be computed: markdown may hold no digits except
    years of references (19xx / 20xx) and code in backticks."""
    for name, cells in builder.NOTEBOOKS.items():
        for kind, text in cells:
            if kind != "md":
                continue
            stripped = re.sub(r"`[^`]*`", "", text)
            stripped = re.sub(r"\b(19|20)\d\d\b", "", stripped)
            digits = re.findall(r"\S*\d\S*", stripped)
            assert not digits, f"{name}: typed number(s) {digits} in markdown: {text[:60]!r}"


def test_notebook_plots_label_their_axes(builder):
    """Every axis that the notebooks create is given x and y labels in the same cell."""
    for name, cells in builder.NOTEBOOKS.items():
        for kind, src in cells:
            if kind != "code" or "plt.subplots" not in src:
                continue
            assert "set_xlabel" in src and "set_ylabel" in src, f"{name}: unlabelled plot"


# ---------------------------------------------------------------------------------------------
# fast: architecture map
# ---------------------------------------------------------------------------------------------


def _architecture_layers() -> dict[str, int]:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(bayes_nsum[\w.]*)` \| (\d) \|", text, flags=re.M)
    return {mod: int(layer) for mod, layer in rows}


def _modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for path in src.rglob("*.py"):
        rel = path.relative_to(src.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: set[str], root: str = "bayes_nsum") -> set[str]:
    """Package modules imported anywhere in a file (function-level imports included)."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == root}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != root:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module -> the package modules it imports (nearest listed module for attributes)."""
    modules = _modules(src)
    root = src.name
    graph = {}
    for mod, path in modules.items():
        targets = set()
        for t in _imports(mod, path, set(modules), root):
            while t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t != mod and t in modules:
                targets.add(t)
        graph[mod] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_architecture_lists_every_module():
    layers = _architecture_layers()
    missing = sorted(set(_modules()) - set(layers))
    assert not missing, f"ARCHITECTURE.md does not describe: {', '.join(missing)}"
    stale = sorted(set(layers) - set(_modules()))
    assert not stale, f"ARCHITECTURE.md lists modules that do not exist: {', '.join(stale)}"


def test_imports_follow_the_layers():
    layers = _architecture_layers()
    bad = []
    for mod, targets in import_graph().items():
        if mod not in layers:
            continue  # reported by test_architecture_lists_every_module
        for target in targets:
            if layers.get(target, 0) > layers[mod]:
                bad.append(f"{mod} (layer {layers[mod]}) imports {target} (layer {layers[target]})")
    assert not bad, "imports against the layers of ARCHITECTURE.md:\n" + "\n".join(bad)


def test_no_import_circle():
    cycles = import_cycles(import_graph())
    assert not cycles, "modules that import each other (directly or around a circle): " + str(
        cycles
    )


def test_a_planted_circle_is_found(tmp_path):
    """The circle check sees a circle through a function-level import and a package."""
    pkg = tmp_path / "bayes_nsum"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n    return g\n")
    (pkg / "c.py").write_text("import bayes_nsum.a\n")
    (pkg / "d.py").write_text("from . import a\n")  # imports into the circle, not part of it
    assert import_cycles(import_graph(pkg)) == [
        ["bayes_nsum.a", "bayes_nsum.c", "bayes_nsum.sub.b"]
    ]
    (pkg / "c.py").write_text("")  # circle broken
    assert import_cycles(import_graph(pkg)) == []


def test_no_module_is_too_long():
    """A module over 600 lines holds more than one job: split it."""
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"modules over 600 lines: {long}"


def test_make_benchmarks_knows_every_benchmark_script():
    """`make benchmarks` (benchmarks/run_all.py) runs the speed set and can run every study: a
    new script that is neither a helper nor a listed study would be forgotten."""
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    listed = {args[0].removeprefix("benchmarks/") for args, _, _ in run_all.STUDIES.values()}
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py")}
    assert not scripts - listed - run_all.HELPERS, "benchmark scripts run_all.py does not list"
    assert listed <= scripts and run_all.HELPERS <= scripts, "run_all.py names missing scripts"


# ---------------------------------------------------------------------------------------------
# slow: docs build
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    spec_html = (site / "reference" / "spec.html").read_text(encoding="utf-8")
    from bayes_nsum.spec import SCHEMA

    for keys in SCHEMA.values():
        for key in keys:
            if key != "*":
                assert f"<code>{key}</code>" in spec_html
    cli_html = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "usage: bayes-nsum fit" in cli_html  # the --help text inserted by docs/hooks.py
    # offline: no page loads a script, style, font or image from the network
    remote = re.compile(r"""<(?:script|img|link)\b[^>]*(?:src|href)=["']https?://""")
    offenders = [
        str(p.relative_to(site))
        for p in site.rglob("*.html")
        if remote.search(p.read_text("utf-8"))
    ]
    assert not offenders, f"pages loading remote resources: {offenders}"


# ---------------------------------------------------------------------------------------------
# slow: notebooks execute
# ---------------------------------------------------------------------------------------------

# Injected before the first cell (not saved): record every figure shown without axis labels.
_LABEL_CHECK = """\
import matplotlib.pyplot as _plt
_unlabelled, _n_checked = [], [0]
_orig_show = _plt.show
def _checked_show(*args, **kwargs):
    for num in _plt.get_fignums():
        for ax in _plt.figure(num).axes:
            if ax.axison and ax.has_data():
                _n_checked[0] += 1
                if not (ax.get_xlabel() and ax.get_ylabel()):
                    _unlabelled.append(ax.get_title() or str(num))
    return _orig_show(*args, **kwargs)
_plt.show = _checked_show
"""
_LABEL_ASSERT = """\
assert _n_checked[0] > 0, "no figure was shown"
assert not _unlabelled, f"figures without axis labels: {_unlabelled}"
"""


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernel spec running this interpreter (the venv), found first through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    kdir = root / "kernels" / "bayes-nsum-tests"
    kdir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kspec = {"argv": argv, "display_name": "bayes_nsum tests", "language": "python"}
    (kdir / "kernel.json").write_text(json.dumps(kspec), encoding="utf-8")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root), *([old] if old else [])])
    yield "bayes-nsum-tests"
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_executes(name, kernel_name, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("BAYES_NSUM_NB_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the inline backend, as a reader has
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_LABEL_CHECK))
    nb.cells.append(nbformat.v4.new_code_cell(_LABEL_ASSERT))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell and traceback
    print(f"{name} executed in {time.perf_counter() - t0:.0f} s")
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
