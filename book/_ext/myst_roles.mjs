// A Jupyter Book 2 (mystmd) plugin, named in myst.yml: what Jupyter Book 1's Sphinx extensions do
// with the book's markup and mystmd does not, so that every page parses without errors under both.
//
// - {guilabel}`Colab`: a label of the user interface, shown in bold (Sphinx draws a small box).
// - {glossary}: Sphinx's form (a term on one line, its definition indented below) becomes the
//   definition list mystmd's glossary expects, so {term} links resolve.
// - {cite}`ch04-1-kingma2015adam`: sphinxcontrib-bibtex's per-chapter `:keyprefix:` (chNN- or chNN-P-)
//   is dropped, so the citation finds its entry of book/references.bib.

const guilabelRole = {
  name: "guilabel",
  doc: "A label of the user interface (a button, a menu entry), as Sphinx's guilabel role: shown in bold.",
  body: { type: String, required: true },
  run(data) {
    return [{ type: "strong", children: [{ type: "text", value: data.body }] }];
  },
};

function visit(node, type, fn) {
  if (!node || typeof node !== "object") return;
  if (node.type === type) fn(node);
  (node.children || []).forEach((child) => visit(child, type, fn));
}

// "Term\nDefinition ..." paragraphs -> definitionList(definitionTerm, definitionDescription)
function glossaryEntries(glossary) {
  if (!(glossary.children || []).every((child) => child.type === "paragraph")) return;
  const items = [];
  for (const paragraph of glossary.children) {
    const [first, ...rest] = paragraph.children || [];
    if (!first || first.type !== "text" || !first.value.includes("\n")) return; // not Sphinx's form: leave it
    const cut = first.value.indexOf("\n");
    const term = first.value.slice(0, cut).trim();
    const definition = first.value.slice(cut + 1);
    items.push({ type: "definitionTerm", children: [{ type: "text", value: term }] });
    items.push({
      type: "definitionDescription",
      children: [{ type: "paragraph", children: [{ type: "text", value: definition }, ...rest] }],
    });
  }
  glossary.children = [{ type: "definitionList", children: items }];
}

const sphinxGlossary = {
  name: "Sphinx glossaries as definition lists",
  stage: "document",
  plugin: () => (tree) => visit(tree, "glossary", glossaryEntries),
};

const KEY_PREFIX = /^ch\d\d(?:-\d+)?-/i;
const citeKeyPrefix = {
  name: "Citation keys without the chapter's keyprefix",
  stage: "document",
  plugin: () => (tree) => visit(tree, "cite", (cite) => {
    for (const field of ["label", "identifier"]) {
      if (typeof cite[field] === "string") cite[field] = cite[field].replace(KEY_PREFIX, "");
    }
  }),
};

// Printed when Jupyter Book 2 loads this plugin (at the start of every 2.x command in this repository).
console.error(
  "Note: this book's supported build is Jupyter Book 1: `python3 dev.py build` (or " +
    "`pip install \"jupyter-book<2\"` and `jupyter-book build .`). Jupyter Book 2 builds it with " +
    "`jupyter-book build --html` (or `jupyter-book start`), without the numbering per chapter and the " +
    "Colab buttons: README.md, \"Jupyter Book 2\".",
);

const plugin = {
  name: "The course book's Sphinx markup",
  roles: [guilabelRole],
  transforms: [sphinxGlossary, citeKeyPrefix],
};

export default plugin;
