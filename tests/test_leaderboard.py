"""Leaderboard tables from hand-made results documents: which metrics rank (the verdict's), winners, gaps,
overlaps; and the committed leaderboard results still render."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from aebench.infra.numbers import format_number
from aebench.reports.leaderboard import (
    MAX_WIDTH,
    cell,
    dataset_section,
    leaderboard_markdown,
    replace_block,
    select_metrics,
)
from aebench.verdict.ranking import judge


def entry(value, low=None, high=None, hib=False):
    out = {"value": value, "higher_is_better": hib}
    if low is not None:
        out.update(low=low, high=high)
    return out


def row(name, status="ok", **metrics):
    return {"name": name, "status": status, "n": 128, "seeds": [0, 1, 2], "metrics": metrics}


@pytest.fixture()
def doc():
    info = {
        "latent_fd": {"label": "latent FD", "higher_is_better": False, "role": "headline", "unit": ""},
        "latent_mmd": {"label": "latent MMD", "higher_is_better": False, "role": "headline", "unit": ""},
        "fid": {"label": "FID", "higher_is_better": False, "role": "headline", "unit": ""},
        "hit_ellipsoid": {"label": "hit ellipsoid", "higher_is_better": True, "role": "diagnostic", "unit": "rate"},
        "latent_1nn": {"label": "latent 1-NN", "higher_is_better": False, "role": "headline", "unit": "", "ideal": 0.5},
        "nn_distance_ratio": {"label": "nn ratio", "higher_is_better": None, "role": "info", "unit": ""},
    }
    return {
        "metric_info": info,
        "model": {"latent_dim": 64, "checksum": "abcdef1234567890"},
        "features": {"extractor": "inception"},
        "samplers": [
            row("gmm", latent_fd=entry(70.0, 68.0, 72.0), latent_mmd=entry(0.010, 0.008, 0.012),
                fid=entry(50.0, 40.0, 60.0), hit_ellipsoid=entry(0.99, 0.98, 1.0, hib=True),
                latent_1nn=entry(0.62, 0.6, 0.64), nn_distance_ratio=entry(1.0)),
            row("correlated", latent_fd=entry(80.0, 79.0, 81.0), latent_mmd=entry(0.009, 0.0085, 0.0095),
                fid=entry(55.0, 45.0, 65.0), hit_ellipsoid=entry(1.0, 1.0, 1.0, hib=True),
                latent_1nn=entry(0.45, 0.43, 0.47), nn_distance_ratio=entry(1.1)),
            row("uniform", latent_fd=entry(900.0, 850.0, 950.0), latent_mmd=entry(0.5, 0.4, 0.6),
                fid=entry(400.0, 390.0, 410.0), hit_ellipsoid=entry(0.0, 0.0, 0.0, hib=True),
                latent_1nn=entry(1.0, 1.0, 1.0), nn_distance_ratio=entry(5.0)),
            row("broken", status="failed"),
        ],
        "validation": {"metrics": {"latent_fd": {"verdict": "holds"}, "latent_mmd": {"verdict": "holds"},
                                   "fid": {"verdict": "broken"}, "latent_1nn": {"verdict": "holds"}}},
    }


def test_select_metrics_is_the_verdicts(doc):
    sel = select_metrics(doc)
    assert sel.source == "validation"
    assert sel.headline == ["latent_fd", "latent_mmd", "latent_1nn"]  # fid is headline but broken
    assert list(sel.untrusted) == ["fid"] and "broken" in sel.untrusted["fid"]
    assert sel.diagnostic == ["hit_ellipsoid"]  # info keys are neither
    assert judge(doc).ranking_keys == sel.headline
    no_validation = copy.deepcopy(doc)
    del no_validation["validation"]
    sel = select_metrics(no_validation)
    assert sel.source == "roles" and "fid" in sel.headline and not sel.untrusted


def test_a_metric_with_the_same_value_everywhere_is_set_aside(doc):
    for r in doc["samplers"][:3]:
        r["metrics"]["latent_mmd"] = entry(0.25)
    sel = select_metrics(doc)
    assert "latent_mmd" not in sel.headline and sel.flat == ["latent_mmd"]


def test_cells_show_mean_and_half_interval_in_the_reports_format(doc):
    assert cell(entry(70.0, 68.0, 72.0)) == "70.00 ± 2.00"
    assert cell(entry(0.99, 0.98, 1.0, hib=True), "rate") == "99.0% ± 1.0%"
    assert cell(entry(123.4)) == "123.4" == format_number(123.4)
    assert cell(entry(0.0029, 0.0023, 0.0035)) == "0.00290 ± 0.00060"
    assert cell(None) == "—" and cell({"value": None}) == "—"



def test_dataset_section_recommends_from_the_decision_in_a_narrow_table(doc):
    text, sentence = dataset_section(doc, "orl_faces")
    # gmm is clearly better on latent FD and worse on none; the 1-NN ideal of 0.5 makes correlated better
    # there: a trade-off between the two, uniform behind both
    assert sentence.startswith("No single best sampler") and "gmm is better on latent FD" in sentence
    assert "correlated is better on latent 1-NN" in sentence and f"**{sentence}**" in text
    table = text[text.index("| rank | sampler |"):text.index("<details>")]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert all(len(line) <= MAX_WIDTH for line in rows), max(rows, key=len)
    assert {rows[2].split(" | ")[1], rows[3].split(" | ")[1]} == {"**`gmm`**", "**`correlated`**"}
    assert rows[2].startswith("| 1–2 |") and rows[3].startswith("| 1–2 |")
    assert any(line.startswith("| 3 | `uniform`") for line in rows)
    assert "`broken`" in text and "Failed" in text and "`fid` (broken on this model's validation)" in text
    details = text[text.index("<details>"):]
    assert "hit ellipsoid ↑ *(diag.)*" in details and "latent 1-NN (→0.500)" in details
    assert "What the fits learned" not in text  # no row recorded fit_info
    doc["samplers"][0]["fit_info"] = {"k": 2, "fallback": "fewer components", "heldout_loglik": -135.1,
                                      "gaussian_heldout_loglik": -126.0, "irrelevant": 1}
    text, _ = dataset_section(doc, "orl_faces")
    assert "- `gmm`: k=2, fallback=fewer components, heldout_loglik=-135" in text and "irrelevant" not in text


def test_identical_samplers_share_a_row_and_copies_are_flagged(doc):
    twin = copy.deepcopy(doc["samplers"][2])
    twin["name"] = "uniform_again"
    doc["samplers"].insert(3, twin)
    doc["metric_info"]["latent_copies"] = {"label": "latent copies", "higher_is_better": False, "role": "headline",
                                           "unit": "rate", "margin": "0.02"}
    doc["samplers"][0]["metrics"]["latent_copies"] = entry(0.236, 0.15, 0.32)
    for r in doc["samplers"][1:4]:
        r["metrics"]["latent_copies"] = entry(0.0, 0.0, 0.0)
    text, _ = dataset_section(doc, "orl_faces")
    table = text[text.index("| rank | sampler |"):text.index("<details>")]
    assert "`uniform` = `uniform_again`" in table and table.count("uniform_again") == 1
    gmm = next(line for line in table.splitlines() if "`gmm`" in line)
    assert gmm.rstrip(" |").endswith("⚠ 23.6%")
    assert "⚠" not in next(line for line in table.splitlines() if "`correlated`" in line)


def test_two_judges_and_their_agreement_are_shown(doc):
    """A run with --features inception,domain: the section names both judges and says, per image headline
    metric, whether they agree; where they put two samplers in opposite orders it says so and picks neither."""
    text, _ = dataset_section(doc, "orl_faces")
    assert "**Judges.**" not in text  # one judge: nothing changes
    del doc["validation"]
    info = doc["metric_info"]
    info["fid"]["group"] = "image"
    info["fid@domain"] = {**info["fid"], "label": "FID @domain", "judge": "domain"}
    # inception: gmm < correlated < uniform; domain: uniform clearly ahead of gmm (intervals apart both times)
    for r, (value, half) in zip(doc["samplers"], [(20.0, 1.0), (12.0, 1.0), (5.0, 1.0)]):
        r["metrics"]["fid@domain"] = entry(value, value - half, value + half)
    doc["judges"] = {"extractors": [
        {"extractor": "inception", "judge": True, "suffix": ""},
        {"extractor": "domain", "judge": True, "suffix": "@domain",
         "provenance": {"heldout_accuracy": 1.0, "num_classes": 40}}]}
    text, _ = dataset_section(doc, "orl_faces")
    judges = text[text.index("**Judges.**"):text.index("<details>")]
    assert "image features: inception, domain." in text
    assert "domain (keys ending in @domain; validated judge; held-out accuracy 100.0%, 40 classes)" in judges
    (line,) = [x for x in judges.splitlines() if x.startswith("- ")]
    assert line.startswith("- ⚠ FID: the judges disagree — inception puts gmm ahead of uniform, domain puts uniform "
                           "ahead of gmm") and "neither order is taken as the answer" in line
    assert "ρ = -1.00 over 3 samplers" in line


def test_leaderboard_page_snippet_and_readme_block(doc):
    page, snippet = leaderboard_markdown({"orl_faces": doc, "fashion_mnist": doc}, "python scripts/leaderboard.py")
    assert page.startswith("# aebench leaderboard") and "## orl_faces" in page and "## fashion_mnist" in page
    assert "python scripts/leaderboard.py" in page
    assert snippet.startswith("- **orl_faces**: No single best sampler") and "- **fashion_mnist**: " in snippet
    readme = "intro\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\nrest\n"
    new = replace_block(readme, snippet)
    assert "old" not in new and new.startswith("intro\n<!-- leaderboard:start -->\n- **orl_faces**")
    assert new.endswith("rest\n")
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers", snippet)


def test_tables_only_rebuilds_pages_from_kept_results(doc, tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("leaderboard_script", Path(__file__).parents[1] / "scripts" / "leaderboard.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    kept = tmp_path / "lb" / "orl_faces" / "results.json"
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps(doc))
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n")
    monkeypatch.setattr("sys.argv", ["leaderboard.py", "--dataset", "orl_faces", "--tables-only", "--out", str(tmp_path / "lb"),
                                     "--page", str(tmp_path / "lb.md"), "--readme", str(readme)])
    assert script.main() == 0
    assert "## orl_faces" in (tmp_path / "lb.md").read_text()
    assert "- **orl_faces**: No single best sampler" in readme.read_text()
    assert "--dataset orl_faces" in readme.read_text()


def test_the_committed_leaderboard_results_render(tmp_path, monkeypatch):
    """`scripts/leaderboard.py --tables-only` renders the committed docs/leaderboard/*/results.json (run
    nothing); the committed page is left alone."""
    root = Path(__file__).parents[1]
    spec = importlib.util.spec_from_file_location("leaderboard_script", root / "scripts" / "leaderboard.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n")
    monkeypatch.setattr("sys.argv", ["leaderboard.py", "--tables-only", "--page", str(tmp_path / "lb.md"),
                                     "--readme", str(readme)])
    assert script.main() == 0
    page = (tmp_path / "lb.md").read_text()
    assert "## orl_faces" in page and "## fashion_mnist" in page and "`gmm`" in page
    assert "- **orl_faces**: " in readme.read_text() and "- **fashion_mnist**: " in readme.read_text()
