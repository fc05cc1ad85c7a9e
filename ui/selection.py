"""Plotly selection events (from `st.plotly_chart(on_select="rerun")`) → row indices of the data (pure).

Streamlit 1.67 returns `{"selection": {"points": [...], "point_indices": [...], "box": [...],
"lasso": [...]}}`, each point a dict with `curve_number`, `point_index` (also `point_number`),
`x`, `y` (and `z` in 3-D), and `customdata` when the trace has it (a scalar, or a list when
the trace's customdata rows are lists). `point_indices` merges the point indices of every trace,
so on a figure with several traces it cannot say which rows were picked: the map's traces carry
each point's row index as (the first element of) its customdata, and that is what is read here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _selection(event: Any) -> Mapping[str, Any]:
    """The `selection` part of an event (the event itself when it is already that part), or {}."""
    if event is None:
        return {}
    try:
        selection = event["selection"] if "selection" in event else event
    except (TypeError, KeyError):
        selection = getattr(event, "selection", None)
    return selection if isinstance(selection, Mapping) else {}


def _as_row(value: Any) -> int | None:
    """A row index from a customdata value (a number, or a list whose first element is one)."""
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[0]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    try:  # numpy scalars
        as_float = float(value)
    except (TypeError, ValueError):
        return None
    return int(as_float) if as_float.is_integer() else None


def selected_points(event: Any) -> list[Mapping[str, Any]]:
    """The selected point dicts of an event (box, lasso or click), [] when nothing is selected."""
    points = _selection(event).get("points") or []
    return [p for p in points if isinstance(p, Mapping)]


def selected_rows(
    event: Any,
    n_rows: int,
    curve_rows: Mapping[int, Sequence[int]] | Sequence[Sequence[int] | None] | None = None,
) -> list[int]:
    """Row indices (sorted, unique, each in [0, n_rows)) of the points selected in `event`.

    A point's row is its customdata (or customdata[0]). A point without customdata is looked up
    in `curve_rows[curve_number][point_index]` when given (the rows each trace was drawn from);
    otherwise it is skipped. Points of traces that are not data rows (placed sentences, paths)
    carry no customdata and no curve_rows entry, so they are ignored. Malformed points are skipped.
    """
    rows: set[int] = set()
    for point in selected_points(event):
        row = _as_row(point["customdata"]) if "customdata" in point else None
        if row is None and curve_rows is not None:
            row = _lookup(curve_rows, point.get("curve_number"), point.get("point_index", point.get("point_number")))
        if row is not None and 0 <= row < n_rows:
            rows.add(row)
    return sorted(rows)


def _lookup(curve_rows: Any, curve: Any, index: Any) -> int | None:
    curve, index = _as_row(curve), _as_row(index)
    if curve is None or index is None or index < 0:
        return None
    try:
        rows = curve_rows[curve]
    except (KeyError, IndexError, TypeError):
        return None
    if rows is None or index >= len(rows):
        return None
    return _as_row(rows[index])


def has_selection(event: Any) -> bool:
    """Whether the event holds any selected point or any box/lasso region."""
    selection = _selection(event)
    return bool(selection.get("points") or selection.get("box") or selection.get("lasso"))


__all__ = ["has_selection", "selected_points", "selected_rows"]
