"""Generate the synthetic raw survey of ``models/scale_of_harm_raw/`` (fixed seed).

The files have the shape of the Scale of Harm study's raw data (Philippines, 2022), with
invented numbers:

* ``municipalities.csv`` -- one row per municipality: ``area`` (code), ``region`` (Luzon,
  Visayas, Mindanao) and ``population``;
* ``roster.csv`` -- the household roster: one row per member of every surveyed household,
  with ``household_id``, ``municipality``, ``member`` (1 = the respondent), ``age``, ``sex``
  and ``occupation`` (empty for children without one);
* ``survey.csv`` -- one row per respondent: ``respondent_id``, ``municipality``,
  ``household_id``, fourteen "how many ... do you know" questions about known groups, and the
  two hidden groups each asked twice, in general and for livestreamed abuse
  (``victims_general``, ``victims_livestream``, ``offenders_general``,
  ``offenders_livestream``); some answers are missing (empty);
* ``municipalities.geojson`` -- synthetic boundaries: one square per municipality, in three
  island groups;
* ``truth.csv`` -- the true sizes and prevalences of every group per municipality and
  nationally, and the true mean household sizes (columns area, group, quantity, value; the
  national rows have an empty area).

The process: each municipality has a population, an age structure, occupation shares among
adults and a mean household size. Households have ``1 + Poisson(lambda_j)`` members: the
respondent (an adult) and members drawn from the municipality's age structure; the population's
composition is the expected composition of such households, so the roster of the surveyed
households is an unbiased (noisy) sample of it. A respondent's answer about group k is
negative binomial with mean ``degree x share of k in the municipality`` (shape 2). The hidden
groups share a respondent effect: offenders known are negative binomial (shape 0.4), each with
the victims of their case, and a tenth of the victims are known without an offender; each of
the two questions about a hidden group picks up a binomial share of the members the respondent
knows. Six municipalities have no respondents (their estimates are predictions).

Run from anywhere: ``python models/scale_of_harm_raw/make_data.py`` (rewrites the files next to
this script; the same seed gives the same files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20220601
HERE = Path(__file__).resolve().parent

REGIONS = {"Luzon": 24, "Visayas": 18, "Mindanao": 18}
#: respondents per municipality, cycled; every tenth municipality has none
RESPONDENTS = [5, 10, 20, 30, 45, 60]
#: occupations among adults who are not students: share of them (national median)
OCCUPATIONS = {
    "doctor": 0.004,
    "teacher": 0.035,
    "nurse": 0.015,
    "driver": 0.07,
    "security guard": 0.02,
    "construction worker": 0.09,
    "BPO worker": 0.03,
    "sari-sari store owner": 0.045,
    "social worker": 0.006,
}
OTHER_JOBS = ["farmer", "fisher", "vendor", "homemaker", "none"]
#: known group (survey column) -> how it is recognised in the roster
KNOWN = {
    "doctors": ("occupation", "doctor"),
    "teachers": ("occupation", "teacher"),
    "drivers": ("occupation", "driver"),
    "nurses": ("occupation", "nurse"),
    "security_guards": ("occupation", "security guard"),
    "students": ("occupation", "student"),
    "construction_workers": ("occupation", "construction worker"),
    "bpo_workers": ("occupation", "BPO worker"),
    "sari_sari_owners": ("occupation", "sari-sari store owner"),
    "social_workers": ("occupation", "social worker"),
    "children_0_2": ("age", (0, 2)),
    "children_3_5": ("age", (3, 5)),
    "children_6_12": ("age", (6, 12)),
    "children_13_17": ("age", (13, 17)),
}
#: children's age bands (years) and their share of children before area variation
BANDS = {(0, 2): 3 / 18, (3, 5): 3 / 18, (6, 12): 7 / 18, (13, 17): 5 / 18}
STUDENT_13_17 = 0.85  # share of 13-17 year olds who are students
YOUNG_ADULTS = 0.2  # share of adults aged 18-24
STUDENT_18_24 = 0.4  # share of them who are students
VICTIMS_PER_CHILD = 0.01  # median over municipalities
OFFENDERS_PER_ADULT = 0.003
MISSING_KNOWN, MISSING_HIDDEN = 0.015, 0.03


def municipalities(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for region, n in REGIONS.items():
        for _ in range(n):
            rows.append({"region": region})
    m = pd.DataFrame(rows)
    m.insert(0, "area", [f"M{j + 1:03d}" for j in range(len(m))])
    m["population"] = np.round(np.exp(rng.normal(np.log(45_000), 0.6, len(m)))).astype(int)
    return m


def composition(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per municipality: children share among non-respondent members, age-band shares,
    occupation shares of non-student adults, household size parameter."""
    children = np.clip(rng.normal(0.40, 0.04, n), 0.25, 0.55)
    base = np.array(list(BANDS.values()))
    bands = rng.dirichlet(200 * base, n)
    occ = np.array(list(OCCUPATIONS.values()))
    jobs = occ * np.exp(rng.normal(0, 0.3, (n, len(occ))))
    lam = np.exp(rng.normal(np.log(3.3), 0.15, n))
    return {"children": children, "bands": bands, "jobs": jobs, "lam": lam}


def true_shares(comp: dict[str, np.ndarray]) -> pd.DataFrame:
    """Expected share of each group in a municipality's population (households of 1 adult
    respondent + Poisson(lambda) members of the municipality's age structure)."""
    c, bands, jobs, lam = comp["children"], comp["bands"], comp["jobs"], comp["lam"]
    adult_other = 1 - c  # an "other" member is an adult with this probability
    # adults: the respondent plus lam * (1 - c) others, per household of 1 + lam members
    adults = (1 + lam * adult_other) / (1 + lam)
    out = {}
    for b, (lo, hi) in enumerate(BANDS):
        out[f"children_{lo}_{hi}"] = lam * c * bands[:, b] / (1 + lam)
    out["children"] = lam * c / (1 + lam)
    out["adults"] = adults
    student_adult = YOUNG_ADULTS * STUDENT_18_24
    out["students"] = out["children_13_17"] * STUDENT_13_17 + adults * student_adult
    for k, (col, value) in KNOWN.items():
        if col == "occupation" and value != "student":
            j = list(OCCUPATIONS).index(value)
            out[k] = adults * (1 - student_adult) * jobs[:, j]
    out["household_size"] = 1 + lam
    return pd.DataFrame(out)


def _member(rng, is_respondent: bool, c: float, bands: np.ndarray, jobs: np.ndarray) -> dict:
    adult = is_respondent or rng.random() >= c
    if adult:
        young = rng.random() < YOUNG_ADULTS
        age = int(rng.integers(18, 25) if young else rng.integers(25, 81))
        if young and rng.random() < STUDENT_18_24:
            occupation = "student"
        else:
            u, acc, occupation = rng.random(), 0.0, None
            for name, p in zip(OCCUPATIONS, jobs, strict=True):
                acc += p
                if u < acc:
                    occupation = name
                    break
            if occupation is None:
                occupation = OTHER_JOBS[int(rng.integers(len(OTHER_JOBS)))]
    else:
        lo, hi = list(BANDS)[int(rng.choice(len(BANDS), p=bands))]
        age = int(rng.integers(lo, hi + 1))
        occupation = "student" if lo == 13 and rng.random() < STUDENT_13_17 else ""
    return {"age": age, "sex": "F" if rng.random() < 0.5 else "M", "occupation": occupation}


def _negbin(rng, mean: np.ndarray, shape: float) -> np.ndarray:
    return rng.poisson(rng.gamma(shape, np.asarray(mean) / shape))


def _hidden_known(rng, reach: float, share: dict[str, np.ndarray], j: int) -> dict[str, int]:
    """Offenders and victims a respondent knows: offenders negative binomial (shape 0.4); each
    known offender comes with the victims of the case (at least one when the municipality has
    more victims than offenders), and a tenth of the victims are known without an offender."""
    offenders = int(_negbin(rng, reach * share["offenders"][j], 0.4))
    ratio = 0.9 * share["victims"][j] / share["offenders"][j]
    if ratio >= 1:
        victims = offenders + int(rng.poisson((ratio - 1) * offenders))
    else:
        victims = int(rng.binomial(offenders, ratio))
    victims += int(_negbin(rng, 0.1 * reach * share["victims"][j], 0.4))
    return {"victims": victims, "offenders": offenders}


def generate(seed: int = SEED) -> dict[str, pd.DataFrame | dict]:
    rng = np.random.default_rng(seed)
    muni = municipalities(rng)
    n = len(muni)
    comp = composition(rng, n)
    shares = true_shares(comp)
    pop = muni["population"].to_numpy(float)
    victims_rate = VICTIMS_PER_CHILD * np.exp(rng.normal(0, 0.5, n))
    offenders_rate = OFFENDERS_PER_ADULT * np.exp(rng.normal(0, 0.5, n))
    hidden_share = {
        "victims": victims_rate * shares["children"].to_numpy(),
        "offenders": offenders_rate * shares["adults"].to_numpy(),
    }

    roster, survey = [], []
    for j, area in enumerate(muni["area"]):
        n_resp = 0 if (j + 1) % 10 == 0 else RESPONDENTS[j % len(RESPONDENTS)]
        for i in range(n_resp):
            hh = f"H{j + 1:03d}{i + 1:03d}"
            size = 1 + int(rng.poisson(comp["lam"][j]))
            for m in range(size):
                member = _member(
                    rng, m == 0, comp["children"][j], comp["bands"][j], comp["jobs"][j]
                )
                roster.append({"household_id": hh, "municipality": area, "member": m + 1, **member})
            degree = float(np.exp(rng.normal(5.3, 0.6)))
            row = {
                "respondent_id": f"R{j + 1:03d}{i + 1:03d}",
                "municipality": area,
                "household_id": hh,
            }
            for k in KNOWN:
                row[k] = int(_negbin(rng, degree * shares.at[j, k], 2.0))
            effect = float(np.exp(rng.normal(-0.125, 0.5)))  # shared by both hidden groups
            known = _hidden_known(rng, degree * effect, hidden_share, j)
            for g in ("victims", "offenders"):
                row[f"{g}_general"] = int(rng.binomial(known[g], 0.9))
                row[f"{g}_livestream"] = int(rng.binomial(known[g], 0.6))
            survey.append(row)
    roster = pd.DataFrame(roster)
    survey = pd.DataFrame(survey)
    for cols, p in (
        (list(KNOWN), MISSING_KNOWN),
        ([c for c in survey if c.endswith(("_general", "_livestream"))], MISSING_HIDDEN),
    ):
        for col in cols:
            gone = rng.random(len(survey)) < p
            survey[col] = survey[col].astype("Int64").mask(gone)

    truth = []
    for j, area in enumerate(muni["area"]):
        for k in [*KNOWN, "children", "adults"]:
            truth.append((area, k, "size", shares.at[j, k] * pop[j]))
        truth.append((area, "household_size", "mean", shares.at[j, "household_size"]))
        truth.append((area, "victims", "size", hidden_share["victims"][j] * pop[j]))
        truth.append((area, "victims", "prevalence", victims_rate[j]))
        truth.append((area, "offenders", "size", hidden_share["offenders"][j] * pop[j]))
        truth.append((area, "offenders", "prevalence", offenders_rate[j]))
    truth = pd.DataFrame(truth, columns=["area", "group", "quantity", "value"])
    sizes = truth[truth.quantity == "size"].groupby("group", sort=False)["value"].sum()
    national = [("", g, "size", v) for g, v in sizes.items()]
    for g, den in (("victims", "children"), ("offenders", "adults")):
        national.append(("", g, "prevalence", sizes[g] / sizes[den]))
    truth = pd.concat([truth, pd.DataFrame(national, columns=truth.columns)], ignore_index=True)
    return {
        "municipalities": muni,
        "roster": roster,
        "survey": survey,
        "truth": truth,
        "boundaries": boundaries(muni),
    }


def boundaries(muni: pd.DataFrame) -> dict:
    """One 0.5-degree square per municipality, the three island groups stacked north to
    south (synthetic: for the maps only)."""
    origin = {"Luzon": (120.0, 13.0, 6), "Visayas": (121.5, 10.8, 6), "Mindanao": (122.5, 8.6, 6)}
    features = []
    for region, group in muni.groupby("region", sort=False):
        x0, y0, ncol = origin[region]
        for i, area in enumerate(group["area"]):
            r, c = divmod(i, ncol)
            x, y, s = x0 + 0.5 * c, y0 + 0.5 * r, 0.5
            ring = [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]
            ring = [[round(a, 4), round(b, 4)] for a, b in ring]
            features.append(
                {
                    "type": "Feature",
                    "properties": {"municipality": area, "region": region},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    return {"type": "FeatureCollection", "features": features}


def write(folder: Path = HERE, seed: int = SEED) -> dict[str, Path]:
    """Write the files into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    got = generate(seed)
    paths = {}
    for name in ("municipalities", "roster", "survey", "truth"):
        paths[name] = folder / f"{name}.csv"
        got[name].to_csv(paths[name], index=False, float_format="%.8g" if name == "truth" else None)
    paths["boundaries"] = folder / "municipalities.geojson"
    lines = ",\n".join(json.dumps(f, separators=(",", ":")) for f in got["boundaries"]["features"])
    paths["boundaries"].write_text('{"type":"FeatureCollection","features":[\n' + lines + "\n]}\n")
    return paths


if __name__ == "__main__":
    for path in write().values():
        print(f"wrote {path}")
