"""What `rnnkit serve` counts, for GET /metrics in Prometheus' text format (prometheus-client).

    rnnkit_requests_total{route, status}     requests answered
    rnnkit_request_seconds{route}            their latency, a histogram (the time in the handler)
    rnnkit_batch_texts                       texts per model call, a histogram: what batching gathers
    rnnkit_errors_total{kind}                requests refused (client) or failed (server)

With several workers (`serve --workers N`) every process writes its samples to files under
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, set by `serve` before any worker
starts) and /metrics, whichever worker answers it, adds up all of them. Without that variable
(one process, or an app made in a test) the app counts in a registry of its own.
"""

from __future__ import annotations

import os

from rnnkit.errors import UserError

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self):
        try:
            from prometheus_client import CollectorRegistry, Counter, Histogram
        except ImportError:
            raise UserError('rnnkit serve needs prometheus-client for /metrics: pip install "rnnkit[serve]"') from None
        self.registry = CollectorRegistry()  # this app's own: another app in the process counts apart
        r = self.registry
        self.requests = Counter("rnnkit_requests", "requests answered", ["route", "status"], registry=r)
        self.latency = Histogram("rnnkit_request_seconds", "request latency in the handler", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.batch = Histogram("rnnkit_batch_texts", "texts per model call", buckets=BATCH_BUCKETS, registry=r)
        self.errors = Counter("rnnkit_errors", "requests refused or failed", ["kind"], registry=r)

    def answered(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels("client" if status < 500 else "server").inc()

    def exposition(self) -> bytes:
        """The text format of every sample: all workers' in multiprocess mode, else this app's."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
