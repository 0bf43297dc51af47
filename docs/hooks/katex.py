"""MkDocs hook: serve KaTeX from the site itself.

``pymdownx.arithmatex`` only marks equations up (``\\(...\\)``, ``\\[...\\]``); KaTeX typesets
them in the browser. KaTeX comes from the npm registry: ``package.json`` pins it and ``npm ci``
puts it in ``node_modules/``. This hook adds its script, auto-render extension, stylesheet and
fonts to the site under ``assets/katex/`` (``mkdocs.yml`` loads them from there), so equations
render on a laptop without network and on any static host; no page fetches anything from a CDN.
"""

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

SITE_PATH = "assets/katex"
# The checkout's root, where package.json is; also for configs elsewhere that INHERIT ours.
ROOT = Path(__file__).resolve().parents[2]
_ASSETS = ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js")


def katex_dist(root: Path = ROOT) -> Path:
    """KaTeX's ``dist/`` folder in ``root/node_modules``; raises if it is not installed."""
    dist = root / "node_modules" / "katex" / "dist"
    missing = [name for name in _ASSETS if not (dist / name).is_file()]
    if missing or not (dist / "fonts").is_dir():
        raise PluginError(
            f"KaTeX not found in {dist} (missing {', '.join(missing) or 'fonts/'}): the docs "
            f"render their equations with KaTeX from npm; run `npm ci` in {root} first"
        )
    return dist


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    dist = katex_dist()
    fonts = sorted(p.relative_to(dist).as_posix() for p in (dist / "fonts").iterdir())
    for name in (*_ASSETS, *fonts):
        files.append(
            File(
                name,
                src_dir=str(dist),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
                dest_uri=f"{SITE_PATH}/{name}",
            )
        )
    return files
