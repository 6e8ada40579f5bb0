"""CSV downloads of the pages: formula-safe cells, a BOM for Excel, streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

from fastapi.responses import StreamingResponse

from telereg.ingest.submissions import neutralise


def csv_line(cells: Sequence[object]) -> str:
    """One CSV line; a cell a spreadsheet would run as a formula is neutralised."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([neutralise(c) for c in cells])
    return buffer.getvalue()


def csv_download(
    header: Sequence[str], rows: Iterable[Sequence[object]], name: str
) -> StreamingResponse:
    """``rows`` under ``header`` as the file ``name``.csv, streamed as the rows come.

    The file starts with a BOM so that Excel opens Chinese text correctly.
    """

    def lines() -> Iterator[str]:
        yield "\ufeff" + csv_line(header)
        for row in rows:
            yield csv_line(row)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
