"""The analysis engine: an Ibis connection to DuckDB (default) or Spark."""

from __future__ import annotations

import os
import re
import threading
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from telereg.core import workdirs
from telereg.core.errors import EngineError
from telereg.core.settings import Settings

_lock = threading.Lock()
_spark_connections: dict[str, BaseBackend] = {}


def connect(settings: Settings) -> BaseBackend:
    """A new DuckDB connection, or the process-wide Spark one, for the configured engine.

    DuckDB connections are cheap and not shared across threads, so each caller
    gets its own; a Spark session is one per process and master URL.
    """
    if settings.engine == "duckdb":
        # Spill goes under the data dir (pseudonymised data only), not the working directory,
        # and into a directory of this connection's own: two DuckDB databases that share one
        # spill directory write the same file names, and read each other's blocks.
        root = workdirs.engine_spill_root(settings)
        workdirs.sweep(root)
        held = workdirs.claim(root)
        config = {"temp_directory": str(held.path / "spill")}
        if settings.duckdb_memory_limit:
            config["memory_limit"] = settings.duckdb_memory_limit
        try:
            backend = ibis.duckdb.connect(**config)
        except BaseException:
            held.release()
            raise
        # (DuckDB removes its own spill when the connection closes; the claimed directory
        # goes with the connection, or at the next sweep if the process is killed)
        weakref.finalize(backend, held.release)
        return backend
    return _spark(settings.spark_master, log=settings.data_dir / SPARK_LOG)


#: The Spark JVM's own output (its log and stack traces), in the data dir: a command's
#: output stays its own, and a failure is one line naming the JVM's reason.
SPARK_LOG = "spark.log"
#: The JVM's reason in its output: ``…Exception: <reason>``.
_JVM_REASON = re.compile(r"(?:Exception|Error)(?: in thread \S+ \S+)?: (.+)$", re.MULTILINE)


def _spark(master: str, *, log: Path) -> BaseBackend:
    with _lock:
        existing = _spark_connections.get(master)
        if existing is not None:
            return existing
        try:
            from pyspark import SparkConf, SparkContext
            from pyspark.java_gateway import launch_gateway
            from pyspark.sql import SparkSession
        except ImportError as err:
            raise EngineError(
                "the pyspark engine needs the 'spark' extra: pip install 'telereg[spark]'"
            ) from err
        os.environ.setdefault("PYSPARK_PYTHON", "python3")
        conf = (
            SparkConf()
            .setMaster(master)
            .setAppName("telereg")
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.sql.session.timeZone", "UTC")
            .set("spark.sql.shuffle.partitions", "8")
            .set("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            start = output.tell()
            try:
                gateway = launch_gateway(  # type: ignore[no-untyped-call]
                    conf, popen_kwargs={"stdout": output, "stderr": output}
                )
                context = SparkContext(conf=conf, gateway=gateway)
                session = SparkSession(context)
            except Exception as err:  # a JVM that fails to start raises many kinds
                output.flush()
                raise EngineError(
                    f"could not start Spark at {master}: {_jvm_reason(log, start) or err} "
                    f"(the JVM's output is in {log})"
                ) from err
        context.setLogLevel("ERROR")
        connection = ibis.pyspark.connect(session)
        _spark_connections[master] = connection
        return connection


def _jvm_reason(log: Path, start: int) -> str:
    """The first reason the JVM gave in what it wrote to ``log`` from ``start`` on."""
    with log.open("rb") as written:
        written.seek(start)
        found = _JVM_REASON.search(written.read().decode(errors="replace"))
    return found.group(1).strip() if found else ""


def read_parquet_files(backend: BaseBackend, paths: list[str]) -> ir.Table:
    """One table over several Parquet files, on either engine.

    DuckDB takes the list at once; Ibis's Spark backend takes one path per
    call, so the files are read one by one and stacked (they share a contract,
    hence a schema).
    """
    if not paths:
        raise EngineError("no files to read")
    if backend.name == "duckdb":
        table: ir.Table = backend.read_parquet(paths)
        return table
    parts = [backend.read_parquet(path) for path in paths]
    return parts[0] if len(parts) == 1 else ibis.union(*parts)


@contextmanager
def computed(expr: ir.Table) -> Iterator[ir.Table]:
    """``expr`` computed once, kept by its backend while the context lasts.

    For a grouping that several branches of a query read: left inside the query,
    DuckDB materialises it alongside the other branches' hash tables. DuckDB keeps
    it as a temporary table, dropped at the end (in SQL: Ibis's ``drop_table``, and so
    its ``cache``, renders an empty statement with this sqlglot), Spark as a cached
    DataFrame, unpersisted at the end.
    """
    backend = ibis.get_backend(expr)
    if backend.name == "pyspark":
        with expr.cache() as cached:
            yield cached
        return
    name = f"telereg_computed_{uuid.uuid4().hex}"
    table = backend.create_table(name, expr, temp=True)
    try:
        yield table
    finally:
        backend.raw_sql(f'DROP TABLE IF EXISTS "{name}"')


#: How text columns arrive in pandas from :func:`to_frame`.
_ARROW_TEXT = pd.StringDtype("pyarrow")


def to_frame(expr: ir.Table) -> pd.DataFrame:
    """Run ``expr`` into pandas with its text columns kept in Arrow.

    Ibis's own ``to_pandas`` builds one Python object per string; for a table of
    millions of pseudonymised numbers that costs most of the fetch, while Arrow-backed
    strings arrive in a fraction of the time and behave the same in pandas.
    """
    table = expr.to_pyarrow()
    frame: pd.DataFrame = table.to_pandas(
        types_mapper={pa.string(): _ARROW_TEXT, pa.large_string(): _ARROW_TEXT}.get
    )
    return frame
