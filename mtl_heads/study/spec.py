"""The study file: arms of ``mtl-heads train`` options run on blocks of seeds and fractions.

A study is a JSON object (``examples/studies/*.json``)::

    {"name": "fer2013", "description": "...",
     "options": ["--epochs", "30", "--tta"],             # given to every run
     "option_sets": {"recipe": ["--epochs", "60"]},      # optional, "@recipe" inside an arm
     "arms": {"baseline": ["--label-maps", "0"], "aux": ["--label-maps", "3"]},
     "blocks": [{"name": "main", "arms": ["baseline", "aux"], "reference": "baseline",
                 "seeds": [0, 1, 2, 3], "fractions": [0.25, 1.0]}],
     "metrics": ["PublicTest 10-crop"],                  # optional: what the report shows
     "table": {...}}                                     # optional: see check_table

:func:`load_study` reads and checks one, naming the file and the key at fault, and fills in the
defaults (a block's ``reference`` is its first arm). The study's seed, fraction, output folder
and resume flag are set by the runner, so an arm may not set them.
"""

import json
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["check_study", "check_table", "fraction_name", "load_study", "save_study"]

# Options the runner sets for each run: an arm that set them would break the pairing.
RUNNER_OPTIONS = {"--seed", "--train-subset", "--output", "--resume"}


def fraction_name(fraction: float) -> str:
    """The name of a fraction of Training in run folders and summary paths.

    Examples:
        >>> fraction_name(1.0), fraction_name(0.25)
        ('1', '0.25')
    """
    return f"{fraction:g}"


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and check a study file; returns it with defaults filled in.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, or not a valid study (the message names the key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study file {path}: no such file")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"study file {path}: not valid JSON ({err})") from err
    return check_study(spec, str(path))


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def check_study(spec: Any, where: str) -> dict[str, Any]:
    """Check a parsed study, fill in its defaults and expand its ``@option_set`` references.

    Args:
        spec: the parsed JSON.
        where: the file it came from, for the messages.

    Returns:
        ``spec`` itself, completed.

    Raises:
        ValueError: the first problem found, naming ``where`` and the key.

    Examples:
        >>> spec = check_study({"name": "s", "option_sets": {"long": ["--epochs", "60"]},
        ...                     "arms": {"a": ["--label-maps", "0", "@long"]},
        ...                     "blocks": [{"name": "b", "arms": ["a"], "seeds": [0],
        ...                                 "fractions": [1]}]}, "s.json")
        >>> spec["arms"]["a"], spec["blocks"][0]["reference"]
        (['--label-maps', '0', '--epochs', '60'], 'a')
    """
    def fail(msg: str) -> NoReturn:
        raise ValueError(f"study {where}: {msg}")

    if not isinstance(spec, dict):
        fail(f"expected a JSON object, got {type(spec).__name__}")
    for key in ("name", "arms", "blocks"):
        if key not in spec:
            fail(f"missing key {key!r} (expected name, arms, blocks; optional description, "
                 "options, option_sets, metrics, table)")
    if not isinstance(spec["name"], str) or not spec["name"] or "/" in spec["name"]:
        fail(f"'name' must be a non-empty string without '/', got {spec['name']!r}")
    spec.setdefault("description", "")
    spec.setdefault("options", [])
    metrics = spec.setdefault("metrics", None)
    if metrics is not None and not (isinstance(metrics, list) and metrics
                                    and all(isinstance(m, str) for m in metrics)):
        fail(f"'metrics' must be a non-empty list of metric names (e.g. 'validation', "
             f"'PublicTest 10-crop'), got {metrics!r}")
    arms = spec["arms"]
    if not isinstance(arms, dict) or not arms:
        fail("'arms' must be an object of arm name -> list of mtl-heads train options")
    sets = spec.get("option_sets", {})
    if not isinstance(sets, dict):
        fail(f"'option_sets' must be an object of name -> list of options, got {sets!r}")
    lists = [("options", spec["options"]), *((f"option_sets.{k}", v) for k, v in sets.items()),
             *((f"arms.{k}", v) for k, v in arms.items())]
    for name, opts in lists:
        if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
            fail(f"{name!r} must be a list of strings (mtl-heads train options), got {opts!r}")
    for arm, opts in arms.items():
        # "@name" stands for the option set `name`: one line of the file sets a recipe that
        # several arms share (their runs are still told apart by their expanded options)
        unknown = [o for o in opts if o.startswith("@") and o[1:] not in sets]
        if unknown:
            fail(f"arm {arm!r}: unknown option set(s) {unknown} (option_sets: {list(sets)})")
        arms[arm] = [x for o in opts for x in (sets[o[1:]] if o.startswith("@") else [o])]
        banned = RUNNER_OPTIONS & set(arms[arm])
        if banned or "/" in arm:
            fail(f"arm {arm!r}: names may not contain '/' and options may not set "
                 f"{sorted(banned) or '--seed/--train-subset/--output'} (the study sets them)")
    if not isinstance(spec["blocks"], list) or not spec["blocks"]:
        fail("'blocks' must be a non-empty list")
    names = set()
    for i, block in enumerate(spec["blocks"]):
        if not isinstance(block, dict):
            fail(f"blocks[{i}] must be an object")
        for key in ("name", "arms", "seeds", "fractions"):
            if key not in block:
                fail(f"blocks[{i}] lacks {key!r} (expected name, arms, seeds, fractions; "
                     "optional reference, description)")
        if block["name"] in names:
            fail(f"blocks[{i}]: the name {block['name']!r} is used twice")
        names.add(block["name"])
        unknown = [a for a in block["arms"] if a not in arms]
        if unknown:
            fail(f"block {block['name']!r}: unknown arms {unknown} (arms: {list(arms)})")
        block.setdefault("reference", block["arms"][0])
        block.setdefault("description", "")
        if block["reference"] not in block["arms"]:
            fail(f"block {block['name']!r}: reference {block['reference']!r} is not one of its "
                 f"arms {block['arms']}")
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in block["seeds"]):
            fail(f"block {block['name']!r}: seeds must be integers, got {block['seeds']}")
        if not all(_is_number(f) and 0 < f <= 1 for f in block["fractions"]):
            fail(f"block {block['name']!r}: fractions must be in (0, 1], got "
                 f"{block['fractions']}")
    if "table" in spec:
        check_table(spec["table"], spec, fail)
    return spec


def check_table(table: Any, spec: dict[str, Any], fail: Any) -> None:
    """Check a study's ``table`` entry: chosen cells of its blocks beside reported numbers.

    The entry (the paper's Table I in ``examples/studies/fer2013.json``)::

        {"title": "Table I: ...", "metric": "PublicTest 10-crop",
         "columns": ["baseline", "multi-task"],
         "rows": [{"name": "no transformations",
                   "cells": [{"block": "full_100", "arm": "baseline", "fraction": 1.0,
                              "reported": {"mean": 63.71, "std": 0.63}}, ...]}],
         "reported_by": "DeVries et al. 2014, Table I",
         "peers": [{"name": "the fer package", "file": "peers/fer_package.json"}],
         "notes": ["..."]}

    A row has one cell per column; each names the runs of the study that fill it (a block, one
    of its arms and fractions) and, optionally, the ``reported`` mean ± std (in %) to show beside
    them. Every other cell of a row is compared with its first, seed by seed. A peer file
    (relative to the results folder) holds another model's numbers on the same test faces.

    Args:
        table: the entry.
        spec: the study it belongs to (its blocks are checked against).
        fail: called with a message on the first problem.
    """
    if not isinstance(table, dict):
        fail(f"'table' must be an object, got {type(table).__name__}")
    for key in ("title", "metric", "columns", "rows"):
        if key not in table:
            fail(f"'table' lacks {key!r} (expected title, metric, columns, rows; optional "
                 "reported_by, peers, notes)")
    for key in ("title", "metric", "reported_by"):
        if key in table and not (isinstance(table[key], str) and table[key]):
            fail(f"table.{key} must be a non-empty string, got {table[key]!r}")
    columns = table["columns"]
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        fail(f"table.columns must be a non-empty list of strings, got {columns!r}")
    if not isinstance(table["rows"], list) or not table["rows"]:
        fail("table.rows must be a non-empty list")
    blocks = {b["name"]: b for b in spec["blocks"]}
    for i, row in enumerate(table["rows"]):
        where = f"table.rows[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            fail(f"{where} must be an object with a 'name' string and 'cells'")
        cells = row.get("cells")
        if not isinstance(cells, list) or len(cells) != len(columns):
            fail(f"{where} ({row['name']!r}) must have one cell per column ({len(columns)}: "
                 f"{columns}), got {cells!r}")
        for j, cell in enumerate(cells):
            at = f"{where}.cells[{j}] ({row['name']!r}, {columns[j]!r})"
            if not isinstance(cell, dict) or not {"block", "arm", "fraction"} <= set(cell):
                fail(f"{at} must be an object with block, arm, fraction (optional reported)")
            block = blocks.get(cell["block"])
            if block is None:
                fail(f"{at}: no block {cell['block']!r} (blocks: {list(blocks)})")
            if cell["arm"] not in block["arms"]:
                fail(f"{at}: arm {cell['arm']!r} is not in block {cell['block']!r} "
                     f"({block['arms']})")
            if not _is_number(cell["fraction"]) or float(cell["fraction"]) not in [
                    float(f) for f in block["fractions"]]:
                fail(f"{at}: fraction {cell['fraction']!r} is not one of block "
                     f"{cell['block']!r}'s {block['fractions']}")
            reported = cell.get("reported")
            if reported is not None and not (
                    isinstance(reported, dict) and _is_number(reported.get("mean"))
                    and (reported.get("std") is None or _is_number(reported["std"]))):
                fail(f"{at}: 'reported' must be {{\"mean\": number, \"std\": number}} in %, "
                     f"got {reported!r}")
    peers = table.get("peers", [])
    if not isinstance(peers, list):
        fail(f"table.peers must be a list, got {peers!r}")
    for i, peer in enumerate(peers):
        if not (isinstance(peer, dict) and isinstance(peer.get("name"), str)
                and isinstance(peer.get("file"), str)):
            fail(f"table.peers[{i}] must be {{\"name\": ..., \"file\": ...}}, got {peer!r}")
        path = Path(peer["file"])
        if path.is_absolute() or ".." in path.parts:
            fail(f"table.peers[{i}].file {peer['file']!r} must be a path inside the results "
                 "folder (e.g. peers/fer_package.json)")
    notes = table.get("notes", [])
    if not (isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
        fail(f"table.notes must be a list of strings, got {notes!r}")


def save_study(spec: dict[str, Any], results: Path) -> Path:
    """Write ``results/<study>/study.json`` (the study the report reads) unless it is the same."""
    path = results / spec["name"] / "study.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(spec, indent=1) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
