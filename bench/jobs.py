"""Storing a CSV job: how many validated rows per second POST /jobs stores.

    python -m bench.jobs                 # 50,000 rows, 3 runs
    python -m bench.jobs --rows 10000 --runs 1
    python -m bench.jobs --distinct      # every phone number distinct too

The system runs as processes (bench/system.py): one gateway with its production settings, moto,
and a fresh database on DATABASE_URL's server (an embedded Postgres when unset); no sender runs.
Each run posts one CSV of ``--rows`` rows (phone number, email and Slack id given directly, and a
personalisation column, for a template with all three channels), sent a day ahead so that the
relay releases nothing while it is measured. Emails and Slack ids are distinct in every row;
phone numbers repeat every 10,000 rows unless ``--distinct`` (as a real list's mostly would not).
Timed: the POST, from the first byte sent to the 201 (reading the file, validating every address,
planning and rendering every row, storing the job, its notifications, their deliveries and outbox
rows); also a dry run of the same file (the same work, nothing stored). Beside each POST: the
gateway's CPU seconds, and how long one-off POST /notifications (one every 0.2 s, from another
connection) took to be answered meanwhile, to show the job does not hold up the event loop.
The target is 5,000 rows/s or more.
Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.system import ProcessGauge, bench_system, load_average, percentiles, work_directory
from harness.gateway import PRODUCTION_GATEWAY_SETTINGS

TARGET_ROWS_PER_SECOND = 5_000
PROBE_INTERVAL_SECONDS = 0.2
PROBE_RECIPIENT = "bench-job-probe"


def job_csv(rows: int, run: int, *, distinct: bool = False) -> bytes:
    lines = ["phone_number,email,slack_id,first_name"]
    # 415-200-0000 onwards: valid US numbers, a new exchange every 10,000 rows (up to 799 of them).
    phone = (lambda index: f"+1415{200 + index // 10_000:03d}{index % 10_000:04d}") if distinct else (lambda index: f"+1415555{index % 10_000:04d}")
    lines += [f"{phone(index)},row-{run}-{index}@example.com,U0BENCH{index:06d},Name {index}" for index in range(rows)]
    return ("\n".join(lines) + "\n").encode()


class OneOffProbe:
    """POST /notifications every PROBE_INTERVAL_SECONDS on a connection of its own, while started:
    how long each took to be answered."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.seconds: list[float] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self._client.post("/notifications", json={"recipient": PROBE_RECIPIENT, "message": "probe"}).raise_for_status()
            self.seconds.append(time.perf_counter() - started)
            self._stop.wait(PROBE_INTERVAL_SECONDS)

    def __enter__(self) -> OneOffProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per job (default 50,000)")
    parser.add_argument("--runs", type=int, default=3, help="jobs posted, one after another (default 3)")
    parser.add_argument("--distinct", action="store_true", help="every row's phone number distinct (default: repeating every 10,000 rows)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (certificates, service logs)")
    args = parser.parse_args()

    with work_directory("bench-jobs-", keep=args.keep) as (work_dir, cleanup):
        bench = bench_system(work_dir, cleanup, emulator="moto")
        system = bench.system
        gateway = system.start_gateway(settings={**PRODUCTION_GATEWAY_SETTINGS, "topic_arn": system.topology["topic_arn"]})
        gauge = ProcessGauge("gateway", gateway.process.pid)  # type: ignore[arg-type]
        template = {"sms": "Hi ((first_name))", "email": {"subject": "For ((first_name))", "body": "Dear ((first_name))"}, "slack": "Hi ((first_name))"}
        send_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        load_before = load_average()
        stored: list[float] = []
        dry_runs: list[float] = []
        cpu: dict[str, list[float]] = {"stored": [], "dry run": []}
        one_offs: list[float] = []
        with gateway.client() as http, gateway.client() as probe_http:
            http.timeout = httpx.Timeout(600)
            http.put("/templates/bench-job", json=template).raise_for_status()
            http.put(f"/recipients/{PROBE_RECIPIENT}", json={"slack_id": "U0PROBE0001"}).raise_for_status()
            for run in range(args.runs):
                body = job_csv(args.rows, run, distinct=args.distinct)
                for dry_run, seconds in ((True, dry_runs), (False, stored)):
                    cpu_before = gauge.cpu_seconds()
                    with OneOffProbe(probe_http) as probe:
                        started = time.perf_counter()
                        answer = http.post(
                            "/jobs",
                            params={"template": "bench-job", "send_at": send_at, "dry_run": str(dry_run).lower()},
                            content=body,
                            headers={"Content-Type": "text/csv"},
                        )
                        seconds.append(time.perf_counter() - started)
                    cpu["dry run" if dry_run else "stored"].append(gauge.cpu_seconds() - cpu_before)
                    one_offs += probe.seconds
                    if answer.status_code not in (200, 201):
                        print(answer.text[:500], file=sys.stderr)
                        answer.raise_for_status()
                print(
                    f"  run {run + 1}: stored in {stored[-1]:.2f} s ({cpu['stored'][-1]:.2f} gateway CPU s), "
                    f"dry run {dry_runs[-1]:.2f} s ({cpu['dry run'][-1]:.2f}); load average {load_average()}",
                    file=sys.stderr,
                )
        machine = bench.machine_line()
    one_off_ms = percentiles([round(value * 1000, 1) for value in one_offs])
    result: dict[str, Any] = {
        "rows": args.rows,
        "runs": args.runs,
        "distinct": args.distinct,
        "stored_seconds": [round(value, 3) for value in stored],
        "dry_run_seconds": [round(value, 3) for value in dry_runs],
        "stored_rows_per_second": round(args.rows / statistics.median(stored)),
        "dry_run_rows_per_second": round(args.rows / statistics.median(dry_runs)),
        "gateway_cpu_seconds_stored": [round(value, 2) for value in cpu["stored"]],
        "gateway_cpu_seconds_dry_run": [round(value, 2) for value in cpu["dry run"]],
        "one_off_ms_during_jobs": one_off_ms,
        "target_rows_per_second": TARGET_ROWS_PER_SECOND,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    met = "met" if result["stored_rows_per_second"] >= TARGET_ROWS_PER_SECOND else "NOT met"
    print(f"\nCSV jobs: {args.rows:,} rows ({'every address distinct' if args.distinct else 'phone numbers repeating every 10,000'}), {args.runs} run(s), median")
    print(machine)
    print(f"{'':<12}{'seconds':>10}{'rows/s':>10}{'gw CPU s':>10}")
    print(f"{'stored':<12}{statistics.median(stored):>10.2f}{result['stored_rows_per_second']:>10,}{statistics.median(cpu['stored']):>10.2f}")
    print(f"{'dry run':<12}{statistics.median(dry_runs):>10.2f}{result['dry_run_rows_per_second']:>10,}{statistics.median(cpu['dry run']):>10.2f}")
    print(f"one-off POST /notifications meanwhile ({len(one_offs)}): p50 {one_off_ms.get('p50')} ms, p99 {one_off_ms.get('p99')} ms, max {one_off_ms.get('max')} ms")
    print(f"target {TARGET_ROWS_PER_SECOND:,} rows/s stored: {met}")
    print(json.dumps({"benchmark": "jobs", "machine": machine, "settings": vars(args), **result}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
