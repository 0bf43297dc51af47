"""MkDocs hook: render the Sphinx roles of the package's docstrings as a reader expects.

The docstrings cross-reference with Sphinx roles (``:func:`~mtl_heads.train.validate```), which
mkdocstrings' Google-style parser leaves as text, so the API page showed ``:func:`` before the
name. This hook drops the role and, like Sphinx, shows only the last component of a ``~`` target;
``:math:`...``` becomes an inline equation and a ``.. math::`` block a displayed one for KaTeX
(``docs/javascripts/katex.js``), and a paragraph that introduces a literal block ends in one colon
where its docstring has two (``Examples::``), as Sphinx prints it.

Examples:
    >>> strip_roles(':func:<code>~mtl_heads.train.engine.validate</code> scores a split')
    '<code>validate</code> scores a split'
    >>> strip_roles(':math:<code>p &gt; 1/2</code>')
    '<span class="arithmatex">\\\\(p &gt; 1/2\\\\)</span>'
    >>> strip_roles('<p>Training::</p>')
    '<p>Training:</p>'
"""

import re

_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj|const):<code>(~?)([^<]*)</code>")
_MATH = re.compile(r":math:<code>([^<]*)</code>")
# ``.. math::`` and its indented body, which Markdown made a code block
_MATH_BLOCK = re.compile(
    r'<p>\.\. math::</p>\s*<div class="highlight"><pre><span></span><code>(.*?)</code></pre></div>',
    re.S,
)
_LITERAL = re.compile(r"::</p>")


def _name(match: re.Match) -> str:
    short, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def strip_roles(html: str) -> str:
    """``html`` with each Sphinx role rendered: the name in code, or the equation for KaTeX."""
    html = _MATH_BLOCK.sub(r'<div class="arithmatex">\\[\1\\]</div>', html)
    html = _MATH.sub(r'<span class="arithmatex">\\(\1\\)</span>', html)
    html = _LITERAL.sub(":</p>", html)
    return _ROLE.sub(_name, html)


def on_page_content(html: str, **kwargs) -> str:
    return strip_roles(html)
