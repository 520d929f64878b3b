"""Memory and disk of the processor's state with 1 million dedup keys, measured, not extrapolated.

Writes N profile states, each holding one handled messageId (one dedup key) and one campaign
send, into the RocksDB store faust opens for the `profile-state` table (faust's
`RocksDBOptions`, the processor's block cache setting, raw keys and values as faust's JSON
schema writes them), spread over the table's partitions as the processor spreads profiles. It
then reads a sample back (as lookups do) and reports the process RSS and the files on disk.

    .venv/bin/python -m bench.state_memory --keys 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from faust.stores.rocksdb import RocksDBOptions

from bench.common import write_result
from services.common.topics import topics
from services.processor.rules.state import ProfileState, Seen
from services.processor.settings import ProcessorSettings


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def state_value(index: int, now_ms: int) -> bytes:
    """One profile's state as the table stores it: one dedup key, one send."""
    state = ProfileState(
        seen={str(uuid.uuid4()): Seen(now_ms, f"triggers.raw:{index % 12}:{index}", "request")},
        sent={"cart_abandonment": now_ms},
        sends={"cart_abandonment": (now_ms,)},
    )
    return json.dumps(state.to_json()).encode()


def measure(keys: int, root: Path) -> dict[str, Any]:
    partitions = topics().processor_by_profile.partitions
    cache = ProcessorSettings().rocksdb_block_cache_mb * 1024 * 1024
    options = RocksDBOptions(block_cache_size=cache, block_cache_compressed_size=cache // 4)
    before = rss_mib()
    dbs = [options.open(root / f"profile-state-{p}.db") for p in range(partitions)]
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    for index in range(keys):
        key = json.dumps(f"P{index}").encode()
        dbs[index % partitions][key] = state_value(index, now_ms)
    write_seconds = time.perf_counter() - started
    sample = random.Random(1).sample(range(keys), min(keys, 100_000))
    started = time.perf_counter()
    found = sum(dbs[i % partitions].get(json.dumps(f"P{i}").encode()) is not None for i in sample)
    read_seconds = time.perf_counter() - started
    for db in dbs:
        db.flush()
    after = rss_mib()
    disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    for db in dbs:
        db.close()
    return {
        "dedup_keys": keys,
        "partitions": partitions,
        "block_cache_mb_per_partition": cache // 2**20,
        "rss_mib_before": round(before, 1),
        "rss_mib_after": round(after, 1),
        "rss_mib_added": round(after - before, 1),
        "disk_mib": round(disk / 2**20, 1),
        "disk_bytes_per_key": round(disk / keys, 1),
        "writes_per_s": round(keys / write_seconds),
        "sampled_reads": len(sample),
        "sampled_reads_found": found,
        "reads_per_s": round(len(sample) / read_seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
        result = measure(args.keys, Path(tmp))
    if result["sampled_reads_found"] != result["sampled_reads"]:
        raise SystemExit("state lost: some written keys were not found again")
    write_result(
        "state_memory",
        {
            **result,
            "note": (
                "the processor's profile-state store (faust RocksDBOptions via rocksdict) with "
                "one dedup key per profile; RSS is bounded by block caches and write buffers, "
                "not by the key count; the state's retention (the longest campaign window) "
                "bounds the key count itself"
            ),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
