// The widget manager (jupyter-widgets/embed.js) typesets a widget's label with MathJax 2's
// `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`; the site runs MathJax 3, which has no `Hub`,
// so every slider label raised "Cannot read properties of undefined (reading 'Queue')". This gives
// MathJax 3 that one call (as MathJax 3's `typesetPromise`), before the manager draws on `load`.
window.addEventListener("load", () => {
  const mathjax = window.MathJax;
  if (!mathjax || mathjax.Hub) return;
  mathjax.Hub = {
    Queue: ([, , element]) => {
      if (mathjax.startup && mathjax.startup.promise && mathjax.typesetPromise) {
        mathjax.startup.promise.then(() => mathjax.typesetPromise([element]));
      }
    },
  };
});
