#!/usr/bin/env python3
"""Does coupond's memory come back after large Assign calls? (issue 12, defect 7)

Starts the real coupond on a loopback port (a synthetic model published with couponctl:
20,000 users, 300 coupons, d = 32, about 4 MB), runs --assigns Assign calls one after the
other, each planning a campaign of --coupons coupons over an explicit list of --users user
ids (the model's users, then unknown ids scored with the population prior; with
--all_users, every user of the model instead), then waits --idle_seconds. It reads
VmRSS and VmHWM from /proc/<pid>/status and prints:

  before     RSS once the model is loaded and serving
  first      RSS 0.3 s after the first Assign has streamed its last message
  peak       VmHWM (the kernel's high-water mark of RSS) at the end of the run
  last       RSS after the last Assign
  idle       RSS after --idle_seconds with no calls
  ratio      idle / first (issue 12's target: at most 1.5)

Exit status 1 when the ratio is above --max_ratio, so that a small run can be a test
(tests/CMakeLists.txt: AssignMemoryTest). The full bench is the default shape:

  /usr/bin/python3 bench/assign_memory_bench.py --build_dir build/release

--server_env KEY=VALUE (repeatable) sets the server's environment, e.g. an allocator to
compare with LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 or
GLIBC_TUNABLES=glibc.malloc.arena_max=2; --server_flag passes a coupond flag
(bench/RESULTS-memory.md has the figures). Needs /usr/bin/python3 with Debian's grpcio and
protobuf, and the stubs that the build writes to <build_dir>/tests/python.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Pause after each Assign's stream has ended, before reading RSS.
SETTLE_SECONDS = 0.3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build_dir", default=os.path.join(REPO, "build", "release"),
                   help="the CMake build holding server/coupond, cli/couponctl and tests/python")
    p.add_argument("--users", type=int, default=300_000, help="user ids per Assign call")
    p.add_argument("--assigns", type=int, default=20, help="Assign calls, one after the other")
    p.add_argument("--coupons", type=int, default=30, help="coupons in the campaign")
    p.add_argument("--model_users", type=int, default=20_000, help="users of the published model")
    p.add_argument("--all_users", action="store_true",
                   help="plan every user of the model (all_users) instead of an explicit list of --users")
    p.add_argument("--idle_seconds", type=float, default=5.0, help="idle wait before the last RSS")
    p.add_argument("--max_ratio", type=float, default=1.5, help="exit 1 when idle/first is above")
    p.add_argument("--server_env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--server_flag", action="append", default=[], metavar="--FLAG=VALUE")
    args = p.parse_args()
    for name in ("users", "assigns", "coupons", "model_users"):
        if getattr(args, name) <= 0:
            p.error(f"--{name}: must be positive, got {getattr(args, name)}")
    if args.coupons > 300:
        p.error(f"--coupons: the model has 300 coupons, got {args.coupons}")
    for kv in args.server_env:
        if "=" not in kv:
            p.error(f"--server_env: {kv!r} is not KEY=VALUE")
    return args


def status_kib(pid, field):
    """A `field:   N kB` line of /proc/<pid>/status, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def mib(kib):
    return kib / 1024.0


def main():
    args = parse_args()
    sys.path.insert(0, os.path.join(args.build_dir, "tests", "python"))
    sys.path.insert(0, os.path.join(REPO, "clients", "python"))
    sys.path.insert(0, os.path.join(REPO, "tests", "test_util"))
    import grpc  # noqa: F401  (fails here, clearly, without python3-grpcio)
    from coupond_client import CoupondClient
    from coupond_process import spawn, wait_for

    coupond = os.path.join(args.build_dir, "server", "coupond")
    couponctl = os.path.join(args.build_dir, "cli", "couponctl")
    for b in (coupond, couponctl):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b}: not built (ninja -C {args.build_dir} coupond couponctl python_client_stubs)")

    work = tempfile.mkdtemp(prefix="coupond-mem-")
    proc = None
    log = None
    try:
        factors = os.path.join(work, "factors")
        store = os.path.join(work, "store")
        for argv in ([couponctl, "generate", "--out", factors, "--num_users", str(args.model_users),
                      "--num_coupons", "300", "--dimension", "32", "--seed", "42"],
                     [couponctl, "publish", "--store", store, "--factors", factors]):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        port_file = os.path.join(work, "port")
        env = dict(os.environ)
        for kv in args.server_env:
            k, v = kv.split("=", 1)
            env[k] = v
        log = open(os.path.join(work, "coupond.log"), "w")
        argv = [coupond, "--store", store, "--listen", "127.0.0.1:0", "--port_file", port_file,
                "--log_level", "warn", "--shutdown_grace", "2s", *args.server_flag]
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        proc = subprocess.Popen(prefix + argv, stdout=log, stderr=subprocess.STDOUT, env=env)

        def port():
            if proc.poll() is not None:
                raise RuntimeError(f"coupond exited with {proc.returncode}")
            try:
                with open(port_file) as f:
                    return f.read().strip() or None
            except FileNotFoundError:
                return None

        target = f"127.0.0.1:{wait_for(port, 60, 'coupond port file')}"
        # The first `model_users` ids are the model's (u0000001...), the rest unknown users.
        user_ids = [f"u{i:07d}" for i in range(1, args.users + 1)]
        planned = args.model_users if args.all_users else args.users
        campaign = {"campaign_id": "memory", "budget": planned * 0.05,
                    "coupons": [{"coupon_id": f"c{j:05d}"} for j in range(1, args.coupons + 1)]}
        # A 300,000-id request is about 3 MB: raise the client's send limit (the server's
        # --max_message_bytes is 4 MiB).
        options = [("grpc.max_send_message_length", 64 << 20),
                   ("grpc.max_receive_message_length", 64 << 20)]
        pid = proc.pid
        with CoupondClient(target, options=options) as client:
            client.wait_until_serving(timeout=60)
            before = status_kib(pid, "VmRSS")
            after = []
            for i in range(args.assigns):
                start = time.monotonic()
                assigned = 0
                summary = None
                for message in client.assign(campaign, user_ids=None if args.all_users else user_ids,
                                             timeout=600):
                    assigned += len(message.assignments)
                    if message.HasField("summary"):
                        summary = message.summary
                if summary is None:
                    raise RuntimeError(f"Assign {i + 1}: the stream ended without a summary")
                # The server frees the call's memory after the client has seen the end of the
                # stream (the reactor is deleted once gRPC is done with it): let that happen.
                time.sleep(SETTLE_SECONDS)
                after.append(status_kib(pid, "VmRSS"))
                print(f"assign {i + 1:2d}: {assigned} assignments in "
                      f"{time.monotonic() - start:.2f} s, RSS {mib(after[-1]):.1f} MiB", flush=True)
            time.sleep(args.idle_seconds)
            idle = status_kib(pid, "VmRSS")
            peak = status_kib(pid, "VmHWM")
        ratio = idle / after[0]
        print(f"users per Assign {args.model_users if args.all_users else args.users}"
              f"{' (all_users)' if args.all_users else ''}, coupons {args.coupons}, assigns {args.assigns}, "
              f"server env {' '.join(args.server_env) or '-'}, flags {' '.join(args.server_flag) or '-'}")
        print(f"RSS MiB: before {mib(before):.1f}  first {mib(after[0]):.1f}  peak {mib(peak):.1f}  "
              f"last {mib(after[-1]):.1f}  idle {mib(idle):.1f}  (after {args.idle_seconds:g} s)")
        print(f"idle / first = {ratio:.2f} (limit {args.max_ratio:g})")
        proc.terminate()
        code = proc.wait(timeout=30)
        if code != 0:
            raise RuntimeError(f"coupond exited with {code} on SIGTERM")
        if ratio > args.max_ratio:
            print(f"FAIL: idle RSS is {ratio:.2f}x the RSS after the first Assign", file=sys.stderr)
            return 1
        return 0
    except BaseException:
        if log is not None:
            log.flush()
            with open(log.name) as f:
                sys.stderr.write(f.read()[-4000:])
        raise
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if log is not None:
            log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
