"""A service's Prometheus metrics, read from its ops port."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(ops_url: str, *, timeout: float = 10.0) -> Samples:
    """{(sample name, sorted labels): value} of every sample the service exports."""
    with urllib.request.urlopen(f"{ops_url}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
