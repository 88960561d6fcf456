#!/usr/bin/env bash
# The jars Spark needs to read the lake: Iceberg's Spark runtime and the catalog's JDBC
# drivers, fetched once from Maven Central into ~/.cache/plug-pipeline/spark-iceberg-1.10.0
# (pom.xml beside this script), printed as Spark's comma-separated spark.jars.
# Needs mvn and Java 17; PySpark itself comes from the package index (the dev extra).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PLUG_PIPELINE_CACHE:-$HOME/.cache/plug-pipeline}/spark-iceberg-1.10.0
if [[ ! -f $cache/.complete ]]; then
  command -v mvn >/dev/null || { echo "ensure-spark: mvn is needed to fetch the jars" >&2; exit 1; }
  mkdir -p "$cache"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DexcludeTransitive=true \
      -DoutputDirectory="$cache" >&2
  touch "$cache/.complete"
fi
ls "$cache"/*.jar | paste -sd, -
