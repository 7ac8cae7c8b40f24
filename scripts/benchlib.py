"""Helpers the benchmark and fixture scripts share."""
import os
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
