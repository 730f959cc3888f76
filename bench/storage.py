"""Export storage backends side by side: write throughput and the memory a write holds.

    python bench/storage.py [--mib 256]

Writes ``--mib`` MiB in 8,192-row-sized batches (as the COPY drain does) through the
local directory and through S3 (moto's server in a subprocess on loopback, unless
``AWS_ENDPOINT_URL`` points at a real one with ``BENCH_S3_BUCKET``), then reads it back.
The peak of Python allocations during the write shows the spool is bounded (one part).
Prints one table; moto is an emulator in Python, so its MB/s are a floor, not S3's.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from pivotal_reporting.storage import ExportStorage, LocalStorage
from pivotal_reporting.storage_s3 import S3Location, S3Storage

BATCH_BYTES = 8192 * 110  # about one COPY batch of a report row (~110 bytes)


@contextmanager
def moto_endpoint() -> Iterator[str]:
    if os.environ.get("AWS_ENDPOINT_URL") and os.environ.get("BENCH_S3_BUCKET"):
        yield os.environ["AWS_ENDPOINT_URL"]
        return
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    for line in server.stderr:
        if match := re.search(r"Running on (http://\S+)", line):
            endpoint = match.group(1)
            break
    else:
        raise RuntimeError("moto_server did not start")
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - the emulator accepts any key
    )
    try:
        yield endpoint
    finally:
        server.terminate()
        server.wait()


def measure(name: str, key: str, storage: ExportStorage, total_bytes: int) -> str:
    batch = b"x" * BATCH_BYTES
    tracemalloc.start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    partial = storage.begin(f"bench/{key}-1.csv")
    written = 0
    while written < total_bytes:
        partial.write(batch[:-1] + b"\n")  # a new object per batch, as the COPY drain makes
        written += len(batch)
    storage.commit(partial)
    write_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    read = sum(len(chunk) for chunk in storage.iter_bytes(f"bench/{key}-1.csv"))
    read_seconds = time.perf_counter() - started
    assert read == written
    mib = written / 2**20
    return (
        f"| {name} | {mib:.0f} | {write_seconds:.2f} | {mib / write_seconds:.0f} | "
        f"{cpu_seconds:.2f} | {read_seconds:.2f} | {peak / 2**20:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    total = parser.parse_args().mib * 2**20
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        "| backend | MiB | write s | write MiB/s | writer CPU s | read s "
        "| peak Python MiB during write |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as directory:
        print(measure("local", "local", LocalStorage(Path(directory)), total))
    with moto_endpoint():
        bucket = os.environ.get("BENCH_S3_BUCKET") or "pivotal-bench"
        if not os.environ.get("BENCH_S3_BUCKET"):
            boto3.client("s3").create_bucket(Bucket=bucket)
        print(
            measure("s3 (boto3, 8 MiB parts)", "s3", S3Storage(S3Location(bucket, "bench/")), total)
        )


if __name__ == "__main__":
    main()
