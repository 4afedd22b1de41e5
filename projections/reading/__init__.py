"""What readers get: the published snapshots (``snapshots.py``), the Panel's read-only SQL (``panel_sql.py``)
and exports of a cycle's tables (``exports.py``). Nobody here writes a published file."""
