"""``load --to iceberg+...``: the warehouse contract's tables as an Apache Iceberg lakehouse.

Layers, dependencies pointing down::

    command.py    ``lake maintain``: compact, expire snapshots, remove orphan files
    maintain.py   the maintenance itself, safe while a loader writes (retention.py: defaults)
    target.py     the loader's Target: a batch's rows per table, then its offsets
    ledger.py     the offsets, in the snapshot summary of ``plug_offsets``
    erase.py      an erasure request applied to the tables; the ``plug_erasure`` audit
    read.py       DuckDB over the tables' Arrow scans: the report and the KPI views
    schema.py     the contract's tables as Iceberg schemas, partitions and Arrow columns
    catalog.py    an ``iceberg+`` address -> a SQL catalog (PostgreSQL or SQLite)
"""
