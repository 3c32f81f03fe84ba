"""Reading the workbench's pages in tests: sign a test client in, cut a page into the
sections under its headings, and read each table's body rows (their class, their cells'
text, the commitments they link to)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

SIGN_IN = "/workbench/sign-in"
_COMMITMENT = re.compile(r"^/workbench/commitments/(0x[0-9a-f]{64})$")


@dataclass
class Row:
    """One body row of a table: its class ("late" when marked late), each cell's text,
    the commitments its links lead to, and whether a cell carries the late mark."""

    css: str = ""
    cells: list[str] = field(default_factory=list)
    commitments: list[str] = field(default_factory=list)
    late_mark: bool = False

    @property
    def commitment(self) -> str:
        """The one commitment the row is about (0x-hex)."""
        assert len(set(self.commitments)) == 1, self
        return self.commitments[0]


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[Row] = []
        self._row: Row | None = None
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = Row(css=found.get("class") or "")
        elif self._row is not None:
            if tag == "td":
                self._cell = []
            elif tag == "a":
                link = _COMMITMENT.match(found.get("href") or "")
                if link:
                    self._row.commitments.append(link.group(1))
            elif tag == "span" and "late-mark" in (found.get("class") or "").split():
                self._row.late_mark = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[Row]:
    """Every table body row in `html`, in order."""
    parser = _Rows()
    parser.feed(html)
    parser.close()
    return parser.rows


def section(html: str, start: str, end: str | None = None) -> str:
    """The part of `html` from the first `start` to the next `end` (or to the end)."""
    begins = html.index(start)
    if end is None:
        return html[begins:]
    return html[begins : html.index(end, begins + len(start))]


def sign_in(client: httpx.Client, token: str) -> None:
    """Exchange `token` for a workbench session cookie on `client` (a TestClient)."""
    response = client.post(SIGN_IN, data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/workbench/today"
