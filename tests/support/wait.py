"""Waiting on conditions instead of sleeping a fixed time (GUIDE: bound every loop)."""
import time


def wait_until(cond, timeout=10.0, interval=0.02):
    """Poll `cond()` until it is true or `timeout` seconds pass; return its last value."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() >= end:
            return value
        time.sleep(interval)
