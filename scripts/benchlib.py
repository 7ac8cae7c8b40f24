"""Helpers the benchmark and fixture scripts share."""
import json
import os
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time


def cpu_ns(pid):
    """CPU time of every thread of `pid`, from the scheduler's nanosecond counters."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total


def wait_for_path(path, timeout=4.0):
    """Waits until a server has created its socket file."""
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.01)


class Lcg:
    """A fixed pseudo-random sequence, so generated text is the same on every machine and Python."""

    def __init__(self, seed):
        self.state = seed

    def below(self, n):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return (self.state >> 33) % n

    def choice(self, items):
        return items[self.below(len(items))]


def status_field(pid, name):
    """A number from /proc/PID/status, such as VmRSS or Threads (0 when absent)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def spread(samples, scale=1.0, digits=3):
    """p50, p99 and max of `samples`, divided by `scale`."""
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 0.50) / scale, digits),
        "p99": round(percentile(samples, 0.99) / scale, digits),
        "max": round(max(samples) / scale, digits),
    }


def filesystem(path):
    """The type and mount point of the filesystem holding `path`, from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    best = ("?", "/")
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                mount = fields[4].replace("\\040", " ")
                fstype = fields[fields.index("-") + 1]
                if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[1]):
                    best = (fstype, mount)
    except OSError:
        pass
    return {"type": best[0], "mount": best[1]}


def start_fixture(command=None):
    """The OpenAI-compatible test server, or `command` printing "listening on PORT" as it
    does, on a free loopback port: (process, port)."""
    fixture = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "Fixtures",
                           "openai_fixture.py")
    proc = subprocess.Popen(command or [sys.executable, fixture], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    port = int(proc.stdout.readline().split()[-1])
    return proc, port


def start_daemon(bin_dir, work, config_text="", timings=False):
    """llmd with `config_text` as its config and its state in `work`/state; the socket in a short /tmp path.

    `timings`: `llmd --timings`, whose replies carry the daemon's own `commit_us` and `record_us`."""
    config = os.path.join(work, "llmd.conf")
    with open(config, "w") as f:
        f.write(config_text)
    state = os.path.join(work, "state")
    sockdir = tempfile.mkdtemp(prefix="llmd-bench-sock-")
    sock = os.path.join(sockdir, "llmd.sock")
    proc = subprocess.Popen(
        [os.path.join(bin_dir, "llmd"), "--socket", sock, "--config", config, "--state-dir", state]
        + (["--timings"] if timings else []),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_path(sock, timeout=10)
    if not os.path.exists(sock):
        proc.kill()
        raise RuntimeError("llmd did not create its socket")
    time.sleep(0.1)
    return proc, sock, state, sockdir


def stop_daemon(proc):
    """SIGTERM, so SQLite closes (and checkpoints) as in a normal stop; SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Client:
    """One connection to llmd, speaking protocol v1."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(120)  # a hung daemon fails the run instead of stalling it
        self.file = self.sock.makefile("rb")
        hello = json.loads(self.file.readline())
        assert hello["type"] == "hello", hello
        self.next_id = 0

    def call(self, method, params=None):
        """The reply's result and the bytes of its line; skips events and notices."""
        self.next_id += 1
        request_id = self.next_id
        self.sock.sendall(json.dumps({"id": request_id, "method": method, "params": params or {}}).encode() + b"\n")
        while True:
            line = self.file.readline()
            if not line:
                raise RuntimeError(f"llmd closed the connection during {method}")
            message = json.loads(line)
            if message.get("id") != request_id or message["type"] not in ("reply", "error"):
                continue
            if message["type"] == "error":
                raise RuntimeError(f"{method} failed: {message}")
            return message["result"], len(line)

    def send(self, session, text):
        return self.call("send", {"session": session, "text": text, "stream": False, "events": False})[0]

    def close(self):
        self.sock.close()


def command_medians(commands, runs, export_path):
    """Median wall time in ms of each command line, with hyperfine when installed (then
    Python's timer), 3 warm-up runs each.

    Returns: the timer used, and the medians in the order given.
    """
    if shutil.which("hyperfine"):
        subprocess.run(["hyperfine", "-N", "--runs", str(runs), "--warmup", "3", "--export-json", export_path,
                        "--style", "none"] + commands, check=True, stdout=subprocess.DEVNULL)
        with open(export_path) as f:
            return "hyperfine", [r["median"] * 1000 for r in json.load(f)["results"]]
    medians = []
    for command in commands:
        argv = command.split()
        for _ in range(3):
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            samples.append((time.perf_counter() - start) * 1000)
        medians.append(statistics.median(samples))
    return "python", medians


def concurrently(pid, count, one):
    """Runs `one(index)` for `count` indexes, each on a thread of its own, all at once,
    while sampling daemon `pid`'s threads and RSS: (seconds, {"threads", "rss_kib"} peaks)."""
    peak = {"threads": 0, "rss_kib": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["threads"] = max(peak["threads"], len(os.listdir(f"/proc/{pid}/task")))
            peak["rss_kib"] = max(peak["rss_kib"], status_field(pid, "VmRSS"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    workers = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    return elapsed, peak
