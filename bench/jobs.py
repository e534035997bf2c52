"""Storing a CSV job: how many validated rows per second POST /jobs stores.

    python -m bench.jobs                 # 50,000 rows, 3 runs
    python -m bench.jobs --rows 10000 --runs 1

The system runs as processes (bench/system.py): one gateway with its production settings, moto,
and a fresh database on DATABASE_URL's server (an embedded Postgres when unset); no sender runs.
Each run posts one CSV of ``--rows`` rows (phone number, email and Slack id given directly, and a
personalisation column, for a template with all three channels), sent a day ahead so that the
relay releases nothing while it is measured. Timed: the POST, from the first byte sent to the
201 (reading the file, validating every address, planning and rendering every row, storing the
job, its notifications, their deliveries and outbox rows); also a dry run of the same file (the
same work, nothing stored). The target is 5,000 rows/s or more.
Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.system import bench_system, load_average, work_directory
from harness.gateway import PRODUCTION_GATEWAY_SETTINGS

TARGET_ROWS_PER_SECOND = 5_000


def job_csv(rows: int, run: int) -> bytes:
    lines = ["phone_number,email,slack_id,first_name"]
    lines += [f"+1415555{index % 10_000:04d},row-{run}-{index}@example.com,U0BENCH{index:06d},Name {index}" for index in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per job (default 50,000)")
    parser.add_argument("--runs", type=int, default=3, help="jobs posted, one after another (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (certificates, service logs)")
    args = parser.parse_args()

    with work_directory("bench-jobs-", keep=args.keep) as (work_dir, cleanup):
        bench = bench_system(work_dir, cleanup, emulator="moto")
        system = bench.system
        gateway = system.start_gateway(settings={**PRODUCTION_GATEWAY_SETTINGS, "topic_arn": system.topology["topic_arn"]})
        template = {"sms": "Hi ((first_name))", "email": {"subject": "For ((first_name))", "body": "Dear ((first_name))"}, "slack": "Hi ((first_name))"}
        send_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        load_before = load_average()
        stored: list[float] = []
        dry_runs: list[float] = []
        with gateway.client() as http:
            http.timeout = httpx.Timeout(600)
            http.put("/templates/bench-job", json=template).raise_for_status()
            for run in range(args.runs):
                body = job_csv(args.rows, run)
                for dry_run, seconds in ((True, dry_runs), (False, stored)):
                    started = time.perf_counter()
                    answer = http.post(
                        "/jobs",
                        params={"template": "bench-job", "send_at": send_at, "dry_run": str(dry_run).lower()},
                        content=body,
                        headers={"Content-Type": "text/csv"},
                    )
                    seconds.append(time.perf_counter() - started)
                    if answer.status_code not in (200, 201):
                        print(answer.text[:500], file=sys.stderr)
                        answer.raise_for_status()
                print(f"  run {run + 1}: stored in {stored[-1]:.2f} s, dry run {dry_runs[-1]:.2f} s", file=sys.stderr)
        machine = bench.machine_line()
    result: dict[str, Any] = {
        "rows": args.rows,
        "runs": args.runs,
        "stored_seconds": [round(value, 3) for value in stored],
        "stored_rows_per_second": round(args.rows / statistics.median(stored)),
        "dry_run_rows_per_second": round(args.rows / statistics.median(dry_runs)),
        "target_rows_per_second": TARGET_ROWS_PER_SECOND,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    met = "met" if result["stored_rows_per_second"] >= TARGET_ROWS_PER_SECOND else "NOT met"
    print(f"\nCSV jobs: {args.rows:,} rows, {args.runs} run(s), median")
    print(machine)
    print(f"{'':<12}{'seconds':>10}{'rows/s':>10}")
    print(f"{'stored':<12}{statistics.median(stored):>10.2f}{result['stored_rows_per_second']:>10,}")
    print(f"{'dry run':<12}{statistics.median(dry_runs):>10.2f}{result['dry_run_rows_per_second']:>10,}")
    print(f"target {TARGET_ROWS_PER_SECOND:,} rows/s stored: {met}")
    print(json.dumps({"benchmark": "jobs", "machine": machine, "settings": vars(args), **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
