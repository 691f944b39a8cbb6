"""Static HTML pieces shared by the report and the leaderboard: escaped cells, a sortable table, page shell."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
table.sortable th { cursor: pointer; background: #f3f3f3; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.missing { color: #999; background: #fafafa; }
tfoot td { background: #eeeeee; font-style: italic; }
.not-valid { color: #b00000; }
img { max-width: 100%; border: 1px solid #ddd; }
figure { display: inline-block; margin: 0.5rem; vertical-align: top; }
code, pre { background: #f6f6f6; padding: 0.1rem 0.3rem; }
pre { padding: 0.6rem; overflow-x: auto; }
.note { color: #666; font-size: 0.9rem; }
"""

# Sorts by each cell's data-sort (numbers numerically, else text); missing cells (data-sort="") stay last.
SORT_JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent.trim(); }
    if (v === "") { return null; }
    var n = Number(v);
    return isNaN(n) ? v : n;
  }
  function sortBy(table, th, col) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.setAttribute("tabindex", "0");
      th.addEventListener("click", function () { sortBy(table, th, col); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(table, th, col); } });
    });
  });
})();
"""


@dataclass(frozen=True)
class Cell:
    """A table cell: shown text, optional sort key (None = sort by text, "" = missing) and link."""

    text: str
    sort: str | float | None = None
    href: str | None = None
    title: str | None = None
    text_cell: bool = False


def number_cell(x: float | None, digits: int = 3, title: str | None = None) -> Cell:
    """A numeric cell; None is shown as a missing dash that sorts last."""
    if x is None:
        return Cell("—", "", title=title or "missing")
    return Cell(f"{x:.{digits}f}", repr(float(x)), title=title)


def cell_html(cell: Cell, tag: str = "td") -> str:
    """One escaped ``<td>``/``<th>``."""
    attrs = []
    classes = (["missing"] if cell.sort == "" else []) + (["text"] if cell.text_cell else [])
    if classes:
        attrs.append(f'class="{" ".join(classes)}"')
    if cell.sort is not None:
        attrs.append(f'data-sort="{escape(str(cell.sort))}"')
    if cell.title:
        attrs.append(f'title="{escape(cell.title)}"')
    inner = escape(cell.text)
    if cell.href:
        inner = f'<a href="{escape(cell.href)}">{inner}</a>'
    return f"<{tag}{(' ' + ' '.join(attrs)) if attrs else ''}>{inner}</{tag}>"


def table_html(headers: list[str], rows: list[list[Cell]], *, sortable: bool = True, table_id: str = "",
               foot: list[list[Cell]] | None = None) -> str:
    """A table with escaped headers and cells; ``sortable`` adds click-to-sort headers; ``foot`` rows (a
    reference line such as the null band) stay below the sorted rows."""
    attrs = (' class="sortable"' if sortable else "") + (f' id="{escape(table_id)}"' if table_id else "")
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(cell_html(c) for c in row) + "</tr>" for row in rows)
    tfoot = ""
    if foot:
        tfoot = "<tfoot>\n" + "\n".join("<tr>" + "".join(cell_html(c) for c in row) + "</tr>" for row in foot) \
            + "\n</tfoot>\n"
    return f"<table{attrs}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n{tfoot}</table>"


def page_html(title: str, body: str, *, assets: str = "") -> str:
    """A complete page; ``assets`` is the relative path to ``style.css`` and ``sort.js`` (no CDN, no network)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        f"<title>{escape(title)}</title>\n<link rel=\"stylesheet\" href=\"{escape(assets)}style.css\">\n</head>\n"
        f"<body>\n{body}\n<script src=\"{escape(assets)}sort.js\"></script>\n</body>\n</html>\n"
    )


def write_assets(directory) -> None:
    """Write ``style.css`` and ``sort.js`` beside the pages."""
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "style.css").write_text(STYLE.lstrip(), encoding="utf-8")
    (d / "sort.js").write_text(SORT_JS.lstrip(), encoding="utf-8")
