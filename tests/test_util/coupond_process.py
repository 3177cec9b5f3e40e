"""A real coupond process for the Python tests (python_client_test.py, prometheus_test.py).

The binaries come from the environment that tests/CMakeLists.txt sets: COUPOND_BINARY and
COUPONCTL_BINARY. A model is generated and published with couponctl (`generate`, then
`publish`: version 1 of a synthetic platform), and its factor files are read back here so a
test can compute the expected answers itself.
"""

import math
import os
import shutil
import subprocess
import tempfile
import time


def binary(env_name):
    path = os.environ.get(env_name)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"{env_name} must name an executable (set by tests/CMakeLists.txt)")
    return path


def wait_for(predicate, timeout, what):
    """Polls `predicate` every 20 ms until it returns a true value (returned) or `timeout`
    seconds pass (TimeoutError naming `what`). For conditions nothing can notify us of,
    such as a file another process writes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def spawn(argv, log_file):
    """Starts `argv` with stdout and stderr to `log_file`, as a child that the kernel kills
    when this test process dies (setpriv --pdeathsig, util-linux), so that a test killed
    by ctest's timeout leaves no server behind; a failing test kills it itself (close())."""
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    return subprocess.Popen(prefix + list(argv), stdout=log_file, stderr=subprocess.STDOUT)


def free_port():
    """A port nothing listens on now, for servers that cannot report the port they bound
    (Prometheus). Bound to 127.0.0.1 so it never collides with a system daemon's 0.0.0.0:9090
    by intent; a race with another process remains possible and fails the test loudly."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Model:
    """The published model's factors, read from couponctl's factor files
    (pipeline/factor_files.h): p(u, c) = sigmoid(b + b_u + b_c + x_u . y_c) in double."""

    def __init__(self, factors_dir):
        self.global_bias = 0.0
        with open(os.path.join(factors_dir, "model.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if parts[0] == "global_bias":
                    self.global_bias = float(parts[1])
        self.users = {}
        for row in self._rows(os.path.join(factors_dir, "users.tsv")):
            self.users[row[0]] = (float(row[1]), [float(x) for x in row[2:]])
        self.coupons = {}
        for row in self._rows(os.path.join(factors_dir, "coupons.tsv")):
            self.coupons[row[0]] = {
                "bias": float(row[1]), "face_value": float(row[2]), "valid_from": int(row[3]),
                "valid_until": int(row[4]), "stock": int(row[5]),
                "factors": [float(x) for x in row[6:]]}

    @staticmethod
    def _rows(path):
        with open(path) as f:
            lines = [l.rstrip("\r\n") for l in f if l.strip() and not l.startswith("#")]
        return [l.split("\t") for l in lines[1:]]  # the first line is the header

    def active_coupons(self, now):
        return sorted(c for c, a in self.coupons.items()
                      if a["valid_from"] <= now and (a["valid_until"] == 0 or now < a["valid_until"])
                      and a["stock"] != 0)

    def logit(self, user_id, coupon_id):
        coupon = self.coupons[coupon_id]
        user_bias, user_factors = self.users.get(user_id, (0.0, [0.0] * len(coupon["factors"])))
        return (self.global_bias + user_bias + coupon["bias"]
                + sum(x * y for x, y in zip(user_factors, coupon["factors"])))

    def probability(self, user_id, coupon_id):
        return 1.0 / (1.0 + math.exp(-self.logit(user_id, coupon_id)))


class Coupond:
    """Generates and publishes a synthetic model, then runs coupond on loopback ports chosen
    by the kernel (--listen 127.0.0.1:0 and --metrics_listen 127.0.0.1:0, read back from the
    port files). Use as a context manager: the process is killed and the directory removed
    on exit, whatever happened."""

    def __init__(self, num_users=2000, num_coupons=40, dimension=8, extra_flags=()):
        self.dir = tempfile.mkdtemp(prefix="coupond-py-")
        self._proc = None
        self._log = None
        try:
            couponctl = binary("COUPONCTL_BINARY")
            factors = os.path.join(self.dir, "factors")
            self.store = os.path.join(self.dir, "store")
            self._run([couponctl, "generate", "--out", factors, "--num_users", str(num_users),
                       "--num_coupons", str(num_coupons), "--dimension", str(dimension),
                       "--seed", "7"])
            self._run([couponctl, "publish", "--store", self.store, "--factors", factors])
            self.model = Model(factors)
            self.admin_token = "python-test-token-0123456789"
            token_file = os.path.join(self.dir, "admin_token")
            with open(token_file, "w") as f:
                f.write(self.admin_token + "\n")
            os.chmod(token_file, 0o600)
            port_file = os.path.join(self.dir, "port")
            metrics_port_file = os.path.join(self.dir, "metrics_port")
            self.log_path = os.path.join(self.dir, "coupond.log")
            self._log = open(self.log_path, "w")
            self._proc = spawn(
                [binary("COUPOND_BINARY"), "--store", self.store, "--listen", "127.0.0.1:0",
                 "--port_file", port_file, "--metrics_listen", "127.0.0.1:0",
                 "--metrics_port_file", metrics_port_file, "--admin_token_file", token_file,
                 "--poll_interval", "1s", "--shutdown_grace", "2s", "--log_level", "warn",
                 *extra_flags],
                self._log)
            # coupond writes the metrics port file before the gRPC one, and the gRPC one once
            # it serves.
            self.port = int(wait_for(lambda: self._exited() or self._read(port_file), 60,
                                     "coupond's --port_file"))
            self.metrics_port = int(self._read(metrics_port_file))
            self.target = f"127.0.0.1:{self.port}"
        except BaseException:
            self.close()
            raise

    def _exited(self):
        if self._proc.poll() is not None:
            raise RuntimeError(f"coupond exited with {self._proc.returncode}:\n{self.log()}")
        return None

    @staticmethod
    def _read(path):
        try:
            with open(path) as f:
                text = f.read().strip()
            return text or None
        except FileNotFoundError:
            return None

    def _run(self, argv):
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}")

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, then the exit status (0 for a clean shutdown within the grace period)."""
        self._proc.terminate()
        return self._proc.wait(timeout=20)

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
