// Math, outputs and tables wider than the text column (on a phone) scroll inside their own box. This
// marks such boxes with the class `book-scrolls` and `data-hidden` = "right", "left" or "both" (the
// sides where content is out of view), so that book.css can fade that edge and show a scrollbar: a
// reader sees that the formula or the table goes on. Boxes are re-measured when the window changes
// size and when one scrolls. (Code cells scroll as code does everywhere, without a mark.)
(() => {
  const BOXES = ["div.math mjx-container", "span.math", "div.cell_output pre", "div.cell_output .output.text_html",
    ".pst-scrollable-table-container"].join(", ");
  const SLACK = 2; // px: glyph overhangs that a box clips anyway are not "wide"

  function mark(box) {
    if (box.matches("span.math") && box.closest("td, th")) return; // the table scrolls as a whole
    // a span.math is wide only when the column limits it (the theme caps it at max-width: 100%)
    const limited = !box.matches("span.math") ||
      box.getBoundingClientRect().width >= box.parentElement.getBoundingClientRect().width - SLACK;
    const wide = limited && box.scrollWidth > box.clientWidth + SLACK;
    box.classList.toggle("book-scrolls", wide);
    if (!wide) {
      box.removeAttribute("data-hidden");
      return;
    }
    const left = box.scrollLeft > 1;
    const right = box.scrollLeft + box.clientWidth < box.scrollWidth - 1;
    box.dataset.hidden = left && right ? "both" : left ? "left" : right ? "right" : "none";
  }

  const markAll = () => document.querySelectorAll(BOXES).forEach(mark);
  let pending = null;
  const later = () => {
    clearTimeout(pending);
    pending = setTimeout(markAll, 150);
  };

  document.addEventListener("scroll", (event) => {
    const box = event.target;
    if (box instanceof Element && box.classList.contains("book-scrolls")) mark(box);
  }, true);
  window.addEventListener("resize", later);
  window.addEventListener("load", () => {
    const mathjax = window.MathJax;
    const typeset = mathjax && mathjax.startup && mathjax.startup.promise;
    (typeset || Promise.resolve()).then(markAll);
  });
})();
