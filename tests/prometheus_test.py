#!/usr/bin/env python3
"""A real Prometheus (Debian's prometheus 2.42) scrapes a real coupond and evaluates the
recording rules of docker/prometheus/coupond-rules.yml; the error ratio and the p99 latency
are read back through Prometheus's HTTP API (/api/v1/query).

Both servers listen on loopback only, on free ports: never on 9090, where Debian's
prometheus package may run its own daemon. Prometheus gets its own temporary storage and a
generated configuration (scrape and rule evaluation every second).

Why the answer is exact: every Score series (code OK and INVALID_ARGUMENT, and the latency
buckets) exists before Prometheus starts, with values in the proportion 3:1 of the calls
measured afterwards, so all of them are sampled at the same scrapes and rate() extrapolates
them alike. After 60 OK and 20 failing calls the error ratio is then 20 / 80 = 0.25.
"""

import json
import math
import os
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_util"))

import grpc  # noqa: E402

from coupond_client import CoupondClient  # noqa: E402
from coupond_process import Coupond, binary, free_port, spawn, wait_for  # noqa: E402

SCORE = "/coupond.v1.CouponScoring/Score"
ERROR_RATIO = f'method:coupond_grpc_requests:error_ratio_rate5m{{method="{SCORE}"}}'
P99 = f'method:coupond_grpc_request_duration_seconds:p99_rate5m{{method="{SCORE}"}}'
# The whole test; it takes about 7.5 s, 5 of them Prometheus's own delay before it applies
# its first scrape targets (its scrape manager reloads every 5 s; 2.42 has no flag for it).
DEADLINE_S = 25


class Prometheus:
    """Prometheus on 127.0.0.1:<free port>, scraping `metrics_target` every second."""

    def __init__(self, workdir, metrics_target, rules_file):
        self.port = free_port()
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {json.dumps(rules_file)}
scrape_configs:
  - job_name: coupond
    static_configs:
      - targets: [{json.dumps(metrics_target)}]
""")
        self.log_path = os.path.join(workdir, "prometheus.log")
        self._log = open(self.log_path, "w")
        self._proc = spawn([binary("PROMETHEUS_BINARY"), f"--config.file={config}",
                            f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
                            f"--web.listen-address=127.0.0.1:{self.port}",
                            "--log.level=warn"], self._log)

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def _get(self, path):
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()

    def ready(self):
        if self._proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self._proc.returncode}:\n{self.log()}")
        try:
            return self._get("/-/ready")[0] == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def query(self, expr):
        """The instant vector of `expr` now: {frozenset(labels): float}."""
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        answer = json.loads(body)
        if status != 200 or answer["status"] != "success":
            raise AssertionError(f"query {expr!r}: {status} {answer}")
        return {frozenset(r["metric"].items()): float(r["value"][1])
                for r in answer["data"]["result"]}

    def close(self):
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


class PrometheusTest(unittest.TestCase):
    def test_scrapes_coupond_and_evaluates_the_rules(self):
        start = time.monotonic()
        rules = os.environ["COUPOND_PROMETHEUS_RULES"]
        with Coupond(num_users=500, num_coupons=20, dimension=4) as server, \
                CoupondClient(server.target) as client:
            client.wait_until_serving(timeout=20)
            user = sorted(server.model.users)[0]
            coupons = server.model.active_coupons(int(time.time()))[:5]

            def calls(ok, failing):
                for _ in range(ok):
                    client.score(user, coupon_ids=coupons)
                for _ in range(failing):
                    with self.assertRaises(grpc.RpcError) as e:
                        client.score(user, coupon_ids=[coupons[0], coupons[0]])
                    self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

            calls(ok=3, failing=1)  # the series exist before the first scrape
            prometheus = Prometheus(server.dir, f"127.0.0.1:{server.metrics_port}", rules)
            try:
                remaining = lambda: DEADLINE_S - (time.monotonic() - start)  # noqa: E731
                wait_for(prometheus.ready, remaining(), "prometheus /-/ready")
                # Scraped once: the failing calls' series holds the baseline.
                failed = f'coupond_grpc_requests_total{{method="{SCORE}",code="INVALID_ARGUMENT"}}'
                wait_for(lambda: list(prometheus.query(failed).values()) == [1.0], remaining(),
                         f"a scrape of {failed} = 1")
                calls(ok=60, failing=20)

                # The rule outputs change only when a scrape and then an evaluation saw all 80
                # calls; poll until they do.
                seen = {}

                def rules_evaluated():
                    seen["ratio"] = list(prometheus.query(ERROR_RATIO).values())
                    seen["p99"] = list(prometheus.query(P99).values())
                    return (len(seen["ratio"]) == 1 and abs(seen["ratio"][0] - 0.25) < 1e-9
                            and len(seen["p99"]) == 1 and not math.isnan(seen["p99"][0]))

                try:
                    wait_for(rules_evaluated, remaining(), "the recording rules")
                except TimeoutError as e:
                    raise AssertionError(f"{e}; last seen {seen}\n{prometheus.log()}") from e
                p99 = seen["p99"][0]
                # A Score of 5 coupons of a 4-dimensional model: far below a second, even
                # under ASan; above zero because every call takes some time.
                self.assertGreater(p99, 0.0)
                self.assertLess(p99, 1.0)
                # The alerts are loaded (none fires against this healthy server).
                alerts = json.loads(prometheus._get("/api/v1/rules?type=alert")[1])
                names = {r["name"] for g in alerts["data"]["groups"] for r in g["rules"]}
                self.assertIn("CoupondModelVersionRejected", names)
                firing = json.loads(prometheus._get("/api/v1/alerts")[1])["data"]["alerts"]
                self.assertEqual([a for a in firing if a["state"] == "firing"], [])
            finally:
                prometheus.close()
        print(f"prometheus_test: {time.monotonic() - start:.1f} s, p99 {p99 * 1e3:.3f} ms",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
