"""Spark in local mode reading a lake through Iceberg's JDBC catalog (the tables pyiceberg's
SQL catalog keeps), with the jars ``deploy/spark/ensure-spark.sh`` fetches."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.lake.catalog import CATALOG_NAME, parse

ROOT = Path(__file__).parents[2]
ENSURE = ROOT / "deploy" / "spark" / "ensure-spark.sh"


def jars() -> str:
    result = subprocess.run(
        ["bash", str(ENSURE)], capture_output=True, text=True, timeout=600, check=True
    )
    return result.stdout.strip()


@contextmanager
def session(address: str, log_dir: Path) -> Iterator[Any]:
    """A SparkSession on one core whose catalog ``plug`` is the lake's SQLite catalog;
    the session's time zone and the Python side's are UTC."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    lake = parse(address)
    database = lake.catalog_uri.removeprefix("sqlite:///")
    os.environ["TZ"] = "UTC"  # PySpark hands timestamps to Python in the process's zone
    time.tzset()
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("plug-pipeline-lake-test")
        .config("spark.jars", jars())
        .config(
            "spark.sql.extensions",
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        )
        .config(prefix, "org.apache.iceberg.spark.SparkCatalog")
        .config(f"{prefix}.catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog")
        .config(f"{prefix}.uri", f"jdbc:sqlite:{database}")
        .config(f"{prefix}.jdbc.schema-version", "V1")
        .config(f"{prefix}.warehouse", lake.warehouse)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.local.dir", str(log_dir))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        spark.sql(f"USE {CATALOG_NAME}.{lake.namespace}")
        yield spark
    finally:
        spark.stop()
        # the JVM and py4j's sockets too: a later session starts its own
        gateway = SparkContext._gateway
        if gateway is not None:
            gateway.shutdown()
            SparkContext._gateway = None
            SparkContext._jvm = None


def plain(value: Any) -> Any:
    """A value as both engines can be compared on: times as naive UTC, floats rounded."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


def rows(found: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((tuple(plain(v) for v in row) for row in found), key=repr)
