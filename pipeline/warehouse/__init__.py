"""``plug-pipeline load``: every event into a warehouse (DuckDB or PostgreSQL) exactly once.

Layers, dependencies pointing down::

    command.py    the CLI: flags, progress line, metrics endpoint, signals
    loader.py     Kafka -> batches -> the target; seeks to the offsets the warehouse holds
    writes.py     the closed batches queued for the target, written in order off the loop
    batch.py      rows and offsets of one transaction, closed on rows, bytes or age
    rows.py       a decoded event -> table rows (pure)
    duckdb.py     the embedded target        \\ both behind target.py's Target protocol,
    postgres.py   the server target          /  both migrated by migrations.py
    offsets.py    the offsets the warehouse holds, moved with each batch's rows
    tables.py     the warehouse contract: every table and column, once for both dialects
    views.py      the KPI views, created after the tables on every start
"""
