"""Maps of per-area results, per-area plots with area names, and the short console summary of
a pooled fit. Fits use prior draws (conftest ``fake_sampling``): nothing samples here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_nsum.cli import EXIT_BAD_INPUT, main
from bayes_nsum.report.maps import MAPS_EXTRA, grid_geojson, write_grid_geojson
from bayes_nsum.simulate import simulate_scale_of_harm

#: areas of the small design left without respondents (predicted) and with few (suppressed)
PREDICTED = ["A003", "A007"]
SMALL = "A002"  # also A006, A010: 3 respondents each


@pytest.fixture
def pooled_folder(tmp_path) -> Path:
    """A 12-area pooled design: two areas without respondents, one with 3 (suppressed),
    synthetic grid boundaries keyed by ``code``."""
    sim = simulate_scale_of_harm(n_areas=12, respondents_per_area=[12, 3, 12, 20] * 3, seed=5)
    paths = sim.write(tmp_path, model="pooled")
    survey = pd.read_csv(paths["survey"])
    survey[~survey["area"].isin(PREDICTED)].to_csv(paths["survey"], index=False)
    write_grid_geojson(sim.area_table["area"], tmp_path / "areas.geojson", key="code")
    spec = (
        paths["spec"]
        .read_text()
        .replace(
            'area_table = "area_table.csv"',
            'area_table = "area_table.csv"\nboundaries = "areas.geojson"\nboundaries_key = "code"',
        )
    )
    paths["spec"].write_text(spec)
    return tmp_path


def fit(capsys, folder: Path, *extra: str) -> tuple[int, str, str]:
    argv = ["fit", folder / "spec.toml", "--draws", "60", "--chains", "2", "--quiet"]
    code = main([str(a) for a in [*argv, "--allow-unconverged", "--out", folder / "out", *extra]])
    out, err = capsys.readouterr()
    return code, out, err


def test_grid_geojson():
    g = grid_geojson(["a", "b", "c"], key="k", columns=2, origin=(0.0, 0.0), cell=1.0)
    assert [f["properties"]["k"] for f in g["features"]] == ["a", "b", "c"]
    # row by row from the top left
    assert g["features"][0]["geometry"]["coordinates"][0][0] == [0.0, 1.0]
    assert g["features"][2]["geometry"]["coordinates"][0][0] == [0.0, 0.0]


def test_maps_in_report_and_files(capsys, fake_sampling, pooled_folder):
    pytest.importorskip("geopandas")
    fake_sampling()
    code, out, err = fit(capsys, pooled_folder)
    assert code == 0, err
    assert "warning" not in err
    res = pooled_folder / "out"
    maps = sorted(p.name for p in (res / "maps").glob("*.png"))
    assert maps == [
        "offenders_interval_width.png",
        "offenders_prevalence.png",
        "victims_interval_width.png",
        "victims_prevalence.png",
    ]
    html = (res / "report.html").read_text()
    assert "id='maps'" in html or 'id="maps"' in html
    assert html.count("alt='map of the") == 4
    assert "2 area(s) without respondents" in html
    prov = json.loads((res / "provenance.json").read_text())
    assert prov["boundaries"] == {"path": str(pooled_folder / "areas.geojson"), "key": "code"}
    # the report rebuilds the maps from the folder alone
    for p in (res / "maps").iterdir():
        p.unlink()
    assert main(["report", str(res)]) == 0
    assert len(list((res / "maps").glob("*.png"))) == 4


def test_no_geopandas_is_a_warning_not_a_failure(capsys, fake_sampling, pooled_folder, monkeypatch):
    import bayes_nsum.report.maps as maps

    monkeypatch.setattr(maps, "geopandas_missing", lambda: MAPS_EXTRA)
    fake_sampling()
    code, out, err = fit(capsys, pooled_folder)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("bayes-nsum: warning:")]
    assert len(lines) == 1 and "pip install 'bayes_nsum[maps]'" in lines[0]
    res = pooled_folder / "out"
    prov = json.loads((res / "provenance.json").read_text())
    assert any("bayes_nsum[maps]" in w for w in prov["warnings"])
    html = (res / "report.html").read_text()
    assert "No maps: maps need GeoPandas" in html
    assert not (res / "maps").exists()


def test_bad_boundaries_are_one_line(capsys, pooled_folder):
    pytest.importorskip("geopandas")
    spec = pooled_folder / "spec.toml"
    spec.write_text(spec.read_text().replace('boundaries_key = "code"', 'boundaries_key = "muni"'))
    code = main(["estimate", str(spec), "--out", str(pooled_folder / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and len(err.strip().splitlines()) == 1
    assert "'muni'" in err and "boundaries_key" in err
    spec.write_text(spec.read_text().replace('"areas.geojson"', '"nowhere.geojson"'))
    code = main(["estimate", str(spec), "--out", str(pooled_folder / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "boundaries file not found" in err


def test_missing_polygons_are_a_recorded_warning(capsys, fake_sampling, pooled_folder):
    pytest.importorskip("geopandas")
    write_grid_geojson([f"A{j:03d}" for j in range(1, 11)], pooled_folder / "areas.geojson", "code")
    fake_sampling()
    code, out, err = fit(capsys, pooled_folder, "--no-report")
    assert code == 0, err
    assert "no polygon for areas A011, A012" in err


def test_console_summary_fits_on_a_screen(capsys, fake_sampling, pooled_folder):
    fake_sampling()
    code, out, err = fit(capsys, pooled_folder, "--no-report")
    assert code == 0, err
    assert "Per area (12 areas, 3 suppressed)" in out
    assert "full per-area table" in out and "summary.csv" in out
    assert SMALL not in out  # a suppressed area is never shown
    for which in ("highest", "lowest", "least determined"):
        assert which in out
    assert len(out.splitlines()) < 40


def test_area_plot_names_every_area_at_150():
    from bayes_nsum.report.figures import area_interval_figure

    rng = np.random.default_rng(0)
    est = rng.uniform(0.005, 0.02, 150)
    rows = pd.DataFrame(
        {
            "area": [f"A{j:03d}" for j in range(1, 151)],
            "estimate": est,
            "lower": est * 0.7,
            "upper": est * 1.4,
            "interval_prob": 0.9,
        }
    )
    fig = area_interval_figure(rows, "victims", predicted=["A010"])
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert len(names) == 150 and "A010 *" in names
    assert fig.get_size_inches()[1] >= 150 * 0.12  # tall enough for a readable label each
    big = pd.concat([rows.assign(area=rows.area + s) for s in ("x", "y")], ignore_index=True)
    fig = area_interval_figure(big, "victims", max_areas=200)
    assert len(fig.axes[0].get_yticklabels()) == 200
    assert "highest and lowest 100 of 300" in fig.axes[0].get_ylabel()
