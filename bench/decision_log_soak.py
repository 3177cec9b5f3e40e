#!/usr/bin/env python3
"""Soak of the decision log against a collectord that is killed and restarted (issue 12).

Starts collectord (--db in a temporary folder, a loopback port) and coupond logging to it
(--collector), then sends Decide calls for a campaign of --candidates coupons (every
decision record carries every candidate) at a steady --rate for
--seconds. During the run collectord is killed with SIGKILL --kills times, evenly spaced,
and restarted on the same port after --down_seconds. A sampler reads coupond's /metrics
every 50 ms. When the traffic ends it waits until every answered decision is written or
counted as dropped, reads the logger's counters, stops both servers with SIGTERM, and
reads the collector's database with `couponctl export --decisions_out`. Then it checks:

  1. no Decide call failed;
  2. every stored decision id is one coupond answered, stored exactly once (no row
     repeated);
  3. delivered == stored: coupond_decision_log_written_total equals the decisions in the
     collector;
  4. lost == counted drops: the decisions answered but not stored equal
     coupond_decision_log_dropped_total (all causes), and answered == written + dropped;
  5. the queue never exceeded --decision_queue_bytes
     (coupond_decision_log_max_queued_bytes, and every sample of the queued bytes).
It also prints collectord's own counts (`couponctl collector-stats`): batches sent again
after a kill show there as duplicate decisions, stored once.

It prints the figures and exits 1 when a check fails. The default --decision_queue_bytes
(2 MiB, about 50 records of 1,000 candidates, ~40 KB each) is far below coupond's 64 MiB default on
purpose: each outage then overflows the queue, so the drop accounting is exercised too.

  /usr/bin/python3 bench/decision_log_soak.py --build_dir build/release

Needs /usr/bin/python3 with Debian's grpcio and protobuf, and the stubs that the build
writes to <build_dir>/tests/python (ninja coupond collectord couponctl python_client_stubs).
"""

import argparse
import collections
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build_dir", default=os.path.join(REPO, "build", "release"))
    p.add_argument("--seconds", type=float, default=60.0, help="length of the Decide traffic")
    p.add_argument("--rate", type=float, default=20.0, help="Decide calls per second")
    p.add_argument("--candidates", type=int, default=1000, help="coupons in the campaign")
    p.add_argument("--kills", type=int, default=2, help="times collectord is killed (SIGKILL)")
    p.add_argument("--down_seconds", type=float, default=3.0, help="collectord down per kill")
    p.add_argument("--decision_queue_bytes", type=int, default=2 << 20,
                   help="coupond's --decision_queue_bytes")
    p.add_argument("--drain_seconds", type=float, default=60.0,
                   help="after the traffic, how long the queue may take to empty")
    args = p.parse_args()
    for name in ("seconds", "rate", "candidates", "decision_queue_bytes", "drain_seconds"):
        if getattr(args, name) <= 0:
            p.error(f"--{name}: must be positive, got {getattr(args, name)}")
    if args.kills < 0 or args.down_seconds < 0:
        p.error("--kills and --down_seconds: must not be negative")
    return args


def scrape(metrics_port):
    """coupond's /metrics as {name or name{labels}: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def dropped_total(metrics):
    return sum(v for k, v in metrics.items() if k.startswith("coupond_decision_log_dropped_total"))


class Collectord:
    """collectord on a fixed loopback port (chosen by the kernel at the first start, then
    reused so that coupond's channel reconnects to the restarted process)."""

    def __init__(self, binary, work, spawn, wait_for):
        self.binary, self.work, self._spawn, self._wait_for = binary, work, spawn, wait_for
        self.db = os.path.join(work, "collector-db")
        self.port = None
        self.proc = None
        self.starts = 0

    def start(self):
        port_file = os.path.join(self.work, f"collectord-port-{self.starts}")
        listen = f"127.0.0.1:{self.port or 0}"
        self.log = open(os.path.join(self.work, f"collectord-{self.starts}.log"), "w")
        self.proc = self._spawn([self.binary, "--db", self.db, "--listen", listen,
                                 "--port_file", port_file, "--log_level", "warn"], self.log)
        self.starts += 1

        def read():
            if self.proc.poll() is not None:
                raise RuntimeError(f"collectord exited with {self.proc.returncode}")
            try:
                with open(port_file) as f:
                    return f.read().strip() or None
            except FileNotFoundError:
                return None

        self.port = int(self._wait_for(read, 60, "collectord's --port_file"))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


def main():
    args = parse_args()
    sys.path.insert(0, os.path.join(args.build_dir, "tests", "python"))
    sys.path.insert(0, os.path.join(REPO, "clients", "python"))
    sys.path.insert(0, os.path.join(REPO, "tests", "test_util"))
    import grpc
    from coupond_client import CoupondClient
    from coupond_process import spawn, wait_for

    binaries = {name: os.path.join(args.build_dir, sub, name)
                for sub, name in (("server", "coupond"), ("collector", "collectord"),
                                  ("cli", "couponctl"))}
    for b in binaries.values():
        if not os.access(b, os.X_OK):
            sys.exit(f"{b}: not built (ninja -C {args.build_dir} coupond collectord couponctl "
                     "python_client_stubs)")

    work = tempfile.mkdtemp(prefix="coupond-soak-")
    collectord = Collectord(binaries["collectord"], work, spawn, wait_for)
    coupond = None
    coupond_log = None
    try:
        factors = os.path.join(work, "factors")
        store = os.path.join(work, "store")
        for argv in ([binaries["couponctl"], "generate", "--out", factors, "--num_users", "2000",
                      "--num_coupons", str(args.candidates), "--dimension", "16", "--seed", "5"],
                     [binaries["couponctl"], "publish", "--store", store, "--factors", factors]):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        collectord.start()

        port_file = os.path.join(work, "port")
        metrics_port_file = os.path.join(work, "metrics_port")
        coupond_log = open(os.path.join(work, "coupond.log"), "w")
        coupond = spawn([binaries["coupond"], "--store", store, "--listen", "127.0.0.1:0",
                         "--port_file", port_file, "--metrics_listen", "127.0.0.1:0",
                         "--metrics_port_file", metrics_port_file,
                         "--collector", f"127.0.0.1:{collectord.port}",
                         "--decision_queue_bytes", str(args.decision_queue_bytes),
                         "--log_level", "warn", "--shutdown_grace", "2s"], coupond_log)

        def read(path):
            if coupond.poll() is not None:
                raise RuntimeError(f"coupond exited with {coupond.returncode}")
            try:
                with open(path) as f:
                    return f.read().strip() or None
            except FileNotFoundError:
                return None

        port = int(wait_for(lambda: read(port_file), 60, "coupond's --port_file"))
        metrics_port = int(read(metrics_port_file))
        client = CoupondClient(f"127.0.0.1:{port}", timeout=10.0)
        client.wait_until_serving(timeout=60)

        # The campaign's prices from one Assign over every user; then Decide inline.
        campaign = {"campaign_id": "soak", "budget": 200.0,
                    "coupons": [{"coupon_id": f"c{j:05d}"} for j in range(1, args.candidates + 1)]}
        prices = None
        for message in client.assign(campaign, timeout=120):
            if message.HasField("summary"):
                prices = message.summary.prices
        if prices is None:
            raise RuntimeError("Assign: no summary")

        # The sampler: the queue's bytes every 50 ms.
        stop_sampling = threading.Event()
        samples = []

        def sample():
            while not stop_sampling.is_set():
                try:
                    samples.append(scrape(metrics_port).get("coupond_decision_log_queued_bytes", 0))
                except OSError:
                    pass
                stop_sampling.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        # The load, on its own thread: a steady schedule, one call at a time (each takes a
        # few ms). The kills and restarts stay on this thread: setpriv --pdeathsig kills a
        # child when the *thread* that started it exits.
        answered = []  # decision ids, in order
        failures = collections.Counter()
        late = [0]
        users = [f"u{i:07d}" for i in range(1, 2001)]
        n = int(args.seconds * args.rate)
        start = time.monotonic()

        def load():
            for i in range(n):
                due = start + i / args.rate
                now = time.monotonic()
                if now < due:
                    time.sleep(due - now)
                elif now - due > 1.0:
                    late[0] += 1
                try:
                    response = client.decide(users[i % len(users)], campaign=campaign,
                                             prices=prices, request_id=f"soak-{i}")
                    if not response.decision_id:
                        failures["no decision_id"] += 1
                    else:
                        answered.append(response.decision_id)
                except grpc.RpcError as e:
                    failures[f"{e.code().name}: {e.details()}"] += 1

        load_thread = threading.Thread(target=load, daemon=True)
        load_thread.start()

        # SIGKILL evenly spaced, restart after down_seconds.
        events = []
        for k in range(args.kills):
            time.sleep(max(0.0, start + args.seconds * (k + 1) / (args.kills + 1) - time.monotonic()))
            collectord.kill9()
            events.append(f"{time.monotonic() - start:5.1f} s: collectord killed (SIGKILL)")
            time.sleep(args.down_seconds)
            collectord.start()
            events.append(f"{time.monotonic() - start:5.1f} s: collectord restarted")
        load_thread.join()
        traffic_seconds = time.monotonic() - start

        # Drain: collectord is up again; wait until every answered decision is either
        # acknowledged or counted as dropped (an empty queue is not enough: the last batch
        # may still be in flight).
        def drained():
            m = scrape(metrics_port)
            settled = m.get("coupond_decision_log_written_total", 0) + dropped_total(m)
            return m if m.get("coupond_decision_log_queued", 1) == 0 and settled >= len(answered) else None

        try:
            metrics = wait_for(drained, args.drain_seconds,
                               "every decision written or counted as dropped")
        except TimeoutError:
            for e in events:
                print(e)
            for k, v in sorted(scrape(metrics_port).items()):
                if k.startswith("coupond_decision_log"):
                    print(f"{k} {v:g}")
            raise
        stop_sampling.set()
        sampler.join()
        client.close()

        coupond.terminate()
        coupond_code = coupond.wait(timeout=30)
        # The collector's own counts: a batch stored just before a kill and sent again is a
        # duplicate there (stored once; the key is the decision id).
        stats = subprocess.run([binaries["couponctl"], "collector-stats", "--collector",
                                f"127.0.0.1:{collectord.port}"], check=True, text=True,
                               stdout=subprocess.PIPE).stdout
        collector_counts = {line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1]
                            for line in stats.splitlines() if line.strip()}
        collectord_code = collectord.stop()

        decisions_csv = os.path.join(work, "decisions.csv")
        subprocess.run([binaries["couponctl"], "export", "--collector_db", collectord.db,
                        "--decisions_out", decisions_csv], check=True, stdout=subprocess.DEVNULL)
        csv.field_size_limit(1 << 30)
        with open(decisions_csv, newline="") as f:
            stored_rows = [row["decision_id"] for row in csv.DictReader(f)]
        stored = collections.Counter(stored_rows)

        written = int(metrics["coupond_decision_log_written_total"])
        enqueued = int(metrics["coupond_decision_log_enqueued_total"])
        dropped = int(dropped_total(metrics))
        drops_by_cause = {re.sub(r'.*cause="([^"]*)".*', r"\1", k): int(v) for k, v in metrics.items()
                          if k.startswith("coupond_decision_log_dropped_total") and v}
        max_queued = int(metrics.get("coupond_decision_log_max_queued_bytes", -1))
        answered_set = set(answered)
        repeated = [d for d, c in stored.items() if c > 1]
        unknown = [d for d in stored if d not in answered_set]
        lost = len(answered_set) - sum(1 for d in stored if d in answered_set)

        for e in events:
            print(e)
        print(f"traffic: {n} Decide calls of {args.candidates} candidates in {traffic_seconds:.1f} s "
              f"({n / traffic_seconds:.1f}/s, {late[0]} more than 1 s late), failed {sum(failures.values())}")
        print(f"logger: enqueued {enqueued}, written {written}, dropped {dropped} {drops_by_cause}, "
              f"retries {int(metrics.get('coupond_decision_log_retries_total', 0))}, "
              f"write failures {int(metrics.get('coupond_decision_log_write_failures_total', 0))}, "
              f"truncated {int(metrics.get('coupond_decision_log_truncated_total', 0))}")
        print(f"collector: {len(stored_rows)} rows, {len(stored)} distinct ids, {len(repeated)} repeated, "
              f"{len(unknown)} not answered by coupond; lost {lost}")
        print(f"collector-stats: decisions {collector_counts.get('decisions', '?')}, duplicate "
              f"decisions {collector_counts.get('duplicate decisions', '?')} (re-sent, stored once)")
        print(f"queue bytes: max {max_queued} (metric), {int(max(samples, default=0))} (sampled "
              f"{len(samples)}x), bound {args.decision_queue_bytes}")
        print(f"exit codes on SIGTERM: coupond {coupond_code}, collectord {collectord_code}")

        problems = []
        if failures:
            problems.append(f"Decide failed: {dict(failures)}")
        if repeated:
            problems.append(f"{len(repeated)} decisions stored more than once, e.g. {repeated[:3]}")
        if unknown:
            problems.append(f"{len(unknown)} stored decisions coupond never answered, e.g. {unknown[:3]}")
        if written != len(stored):
            problems.append(f"written_total {written} != {len(stored)} decisions in the collector")
        if lost != dropped:
            problems.append(f"lost {lost} != counted drops {dropped}")
        if len(answered) != written + dropped:
            problems.append(f"answered {len(answered)} != written {written} + dropped {dropped}")
        if max_queued < 0:
            problems.append("no coupond_decision_log_max_queued_bytes metric")
        if max_queued > args.decision_queue_bytes or max(samples, default=0) > args.decision_queue_bytes:
            problems.append("the queue exceeded its byte bound")
        if coupond_code != 0 or collectord_code != 0:
            problems.append("a server did not exit cleanly on SIGTERM")
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        if not problems:
            print("OK: every delivered decision stored exactly once; lost == counted drops; "
                  "queue within its bound; no Decide failed")
        return 1 if problems else 0
    except BaseException:
        if coupond_log is not None:
            coupond_log.flush()
            with open(coupond_log.name) as f:
                sys.stderr.write("coupond log (tail):\n" + f.read()[-3000:])
        raise
    finally:
        if coupond is not None and coupond.poll() is None:
            coupond.kill()
            coupond.wait()
        if collectord.proc is not None and collectord.proc.poll() is None:
            collectord.proc.kill()
            collectord.proc.wait()
        if coupond_log is not None:
            coupond_log.close()
        if os.environ.get("SOAK_KEEP_DIR"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
