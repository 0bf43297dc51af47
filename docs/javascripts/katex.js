// Typeset the equations that pymdownx.arithmatex marked up, on every page load, including
// material's instant navigation (document$). arithmatex turns $...$ and $$...$$ into these two
// delimiters, so a dollar sign in prose is never taken for math.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
  });
});
