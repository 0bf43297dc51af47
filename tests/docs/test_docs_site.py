"""The docs site as a reader sees it: ``scripts/docs/check_docs_site.py`` in headless Chromium.

The browser tests skip with a reason when no Chromium is installed (``apt-get install
chromium``) or KaTeX is missing (``npm ci``); CI installs both.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest
from file_modules import load

ROOT = Path(__file__).resolve().parents[2]
# A 1x1 PNG, so the good page has an image that loads.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478"
    "9c63382127070002b6010534a675aa0000000049454e44ae426082"
)


check_docs_site = load("scripts/docs/check_docs_site.py")


@pytest.fixture(scope="module")
def katex_hook() -> ModuleType:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (docs extra)")
    return load("docs/hooks/katex.py")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = check_docs_site.find_chromium()
    if path is None:
        pytest.skip("no Chromium or Chrome found (apt-get install chromium, or set $CHROMIUM)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (docs extra)")
    return path


@pytest.fixture(scope="module")
def katex(katex_hook: ModuleType) -> Path:
    try:
        return katex_hook.katex_dist()
    except Exception as err:  # mkdocs' PluginError
        pytest.skip(f"KaTeX is not installed: {err}")


def _kinds(problems: list, page: str) -> set[str]:
    return {p.kind for p in problems if p.page == page}


def test_missing_katex_names_the_fix(katex_hook: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"KaTeX not found in .*node_modules.*run `npm ci`"):
        katex_hook.katex_dist(tmp_path)


def test_bad_arguments_name_the_culprit(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="'no-such-chrome' not found"):
        check_docs_site.main(["--chromium", "no-such-chrome", "--site", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="not a built site: it has no index.html"):
        check_docs_site.check_site(tmp_path, "chromium")
    (tmp_path / "index.html").write_text("<p>hi</p>")
    with pytest.raises(ValueError, match=r"at least 200, got \[1280, 50\]"):
        check_docs_site.check_site(tmp_path, "chromium", widths=(1280, 50))


@pytest.mark.browser
def test_check_catches_a_broken_page(
    chromium: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "pixel.png").write_bytes(PIXEL_PNG)
    (site / "index.html").write_text(
        "<!doctype html><html><body><p>Fine: <code>\\(not math, code\\)</code></p>"
        '<img src="pixel.png" alt="a pixel">'
        # wide content inside a scrolling box does not widen the page
        '<div style="overflow-x: auto"><div style="width: 3000px">wide table</div></div>'
        "</body></html>"
    )
    (site / "broken.html").write_text(
        "<!doctype html><html><head>"
        '<link rel="stylesheet" href="https://cdn.example.com/katex.min.css"></head><body>'
        "<p>The loss \\[ C = C_e + \\lambda C_l \\] was never typeset.</p>"
        '<img src="missing.png" alt="gone">'
        '<div style="width: 3000px">too wide</div>'
        '<script>console.error("renderMathInElement is not defined")</script>'
        '<script>throw new Error("boom")</script>'
        "</body></html>"
    )
    shots = tmp_path / "shots"
    problems = check_docs_site.check_site(site, chromium, widths=(800,), screenshots=shots)

    assert _kinds(problems, "/") == set(), problems
    assert _kinds(problems, "broken.html") == {
        "raw-math", "image", "request-failed", "external-request", "js-error", "too-wide"
    }, problems
    details = "\n".join(str(p) for p in problems)
    assert "C = C_e + \\lambda C_l" in details
    assert "missing.png" in details and "https://cdn.example.com/katex.min.css" in details
    assert "boom" in details and "renderMathInElement is not defined" in details
    assert "3000px" in details or "<div> reaches" in details
    for name in ("index.png", "broken.png"):
        assert (shots / name).read_bytes()[:8] == PIXEL_PNG[:8]

    # the command line says the same and fails
    assert check_docs_site.main(["--site", str(site), "--widths", "800"]) == 1
    out = capsys.readouterr().out
    assert "broken.html @800px: raw-math: " in out
    assert f"2 pages at 800px: {len(problems)} problems" in out
    (site / "broken.html").unlink()
    assert check_docs_site.main(["--site", str(site), "--widths", "800"]) == 0


@pytest.mark.browser
def test_check_fails_on_a_broken_equation(chromium: str, katex: Path, tmp_path: Path) -> None:
    # The project's own docs and config, with two equations broken on purpose: the loss misses
    # a brace (auto-render then finds no end to it), and an inline one uses an unknown command
    # (KaTeX cannot parse it).
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    concepts = docs / "concepts.md"
    text = concepts.read_text()
    assert "\\frac{1}{B}" in text and "\\(\\lambda = 1\\)" in text
    text = text.replace("\\frac{1}{B}", "\\frac{1}{B", 1)
    concepts.write_text(text.replace("\\(\\lambda = 1\\)", "\\(\\lambdaa = 1\\)"))
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: docs\n"
        f"hooks:\n  - {ROOT / 'docs' / 'hooks' / 'katex.py'}\n"
    )
    site = tmp_path / "site"
    check_docs_site.build_site(config, site)

    problems = check_docs_site.check_site(
        site, chromium, widths=(1280,), pages=["concepts/", "label-maps/"]
    )
    assert _kinds(problems, "concepts/") == {"raw-math", "js-error"}, problems
    raw = [p.detail for p in problems if p.kind == "raw-math"]
    assert any("C = C_e + \\lambda" in d for d in raw) and any("\\lambdaa" in d for d in raw)
    assert any("\\lambdaa" in p.detail for p in problems if p.kind == "js-error")
    assert _kinds(problems, "label-maps/") == set(), problems


@pytest.mark.browser
@pytest.mark.slow
def test_docs_site_reads_as_it_should(chromium: str, katex: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    check_docs_site.build_site(ROOT / "mkdocs.yml", site)
    shots = tmp_path / "shots"
    problems = check_docs_site.check_site(site, chromium, screenshots=shots)
    assert problems == [], "\n".join(map(str, problems))
    assert (shots / "concepts.png").is_file()
    assert len(list(shots.glob("*.png"))) == len(check_docs_site.site_pages(site))
    # the math is typeset from the site itself
    assert (site / "assets" / "katex" / "katex.min.js").is_file()
    assert any((site / "assets" / "katex" / "fonts").glob("*.woff2"))
