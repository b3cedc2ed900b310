#!/usr/bin/env python3
"""Benchmark `codex proxy` against a direct connection and nginx as a reverse proxy.

    .venv/bin/python bench/bench_proxy.py [--quick] [--json OUT]

All three paths end at the same scripted upstream (tests/support/proxy_upstream.py) on
127.0.0.1; nginx (Debian's, `apt-get install nginx-light`; skipped when missing) runs one
worker with proxy_buffering and proxy_request_buffering off, a keep-alive upstream pool,
and a config written to a temp dir.  Measured:

  latency     sequential GET /v1/models on one kept-alive connection (http.client)
  req/s       wrk -t1 -c32 for 5 s on GET /v1/models (skipped without wrk)
  download    curl, 1 GiB from GET /v1/bytes, MB/s
  upload      curl, 1 GiB chunked POST to /v1/sink (the upstream hashes it), MB/s
  streams     100 parallel SSE streams of 20 events 50 ms apart (ideal: 1.0 s)

Not a test: it prints a Markdown table (docs/proxy.md keeps the figures).
"""
import argparse
import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.proxy_procs import Proxy, Upstream, provider_args  # noqa: E402

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream provider {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location /v1/ {{
      proxy_pass http://provider;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer sk-bench";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
    }}
  }}
}}
"""


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx(object):
    def __init__(self, up_port):
        self.tmp = tempfile.mkdtemp(prefix="bench-nginx-")
        self.port = free_port()
        conf = Path(self.tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=self.tmp, up=up_port, port=self.port))
        self.proc = subprocess.Popen([shutil.which("nginx"), "-c", str(conf), "-p", self.tmp],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/v1/models")
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start; see %s/error.log" % self.tmp)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def latency(url, count):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for i in range(count + 100):
        t = time.perf_counter()
        conn.request("GET", "/v1/models", headers={"Authorization": "Bearer sk-bench"})
        conn.getresponse().read()
        if i >= 100:  # warm-up excluded
            times.append((time.perf_counter() - t) * 1e6)
    conn.close()
    times.sort()
    return {"p50_us": times[len(times) // 2], "p99_us": times[int(len(times) * 0.99)],
            "mean_us": statistics.mean(times)}


def wrk_rps(url, seconds):
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t1", "-c32", "-d%ds" % seconds, "-H", "Authorization: Bearer sk-bench",
                          url + "/v1/models"], capture_output=True, text=True, timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


def curl_download(url, size):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}",
                          url + "/v1/bytes?n=%d" % size], capture_output=True, text=True, timeout=600).stdout
    speed, got = out.split()
    assert int(float(got)) == size, out
    return float(speed) / 1e6


def curl_upload(url, size):
    src = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE)
    out = subprocess.run(["curl", "-sS", "-X", "POST", "-T", "-", "-w", "\n%{speed_upload}",
                          url + "/v1/sink"], stdin=src.stdout, capture_output=True, text=True, timeout=600).stdout
    src.wait()
    body, speed = out.rsplit("\n", 1)
    assert json.loads(body)["bytes"] == size, body
    return float(speed) / 1e6


def parallel_streams(url, count=100, events=20, gap_ms=50):
    import httpx

    async def run():
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            async def one():
                n = 0
                async with client.stream("GET", url + "/v1/sse?n=%d&delay_ms=%d" % (events, gap_ms)) as resp:
                    async for line in resp.aiter_lines():
                        n += line.startswith("data: ")
                return n

            t = time.perf_counter()
            got = await asyncio.gather(*[one() for _ in range(count)])
            assert got == [events] * count
            return time.perf_counter() - t

    return asyncio.run(run())


def vm_hwm_mib(pid):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    opts = ap.parse_args()
    size = (128 if opts.quick else 1024) * 1024 * 1024
    lat_n = 300 if opts.quick else 3000
    secs = 2 if opts.quick else 5
    home = tempfile.mkdtemp(prefix="bench-codex-home-")
    up = Upstream()
    proxy = Proxy(provider_args(up.url + "/v1", env_key="BENCH_KEY"),
                  env={"CODEX_HOME": home, "BENCH_KEY": "sk-bench"})
    nginx = Nginx(up.port) if shutil.which("nginx") else None
    targets = [("direct", up.url), ("codex proxy", proxy.url)] + ([("nginx", nginx.url)] if nginx else [])
    results = {}
    try:
        for name, url in targets:
            r = results[name] = {}
            r.update(latency(url, lat_n))
            r["rps_c32"] = wrk_rps(url, secs)
            r["download_MBps"] = curl_download(url, size)
            r["upload_MBps"] = curl_upload(url, size)
            r["streams_100_s"] = parallel_streams(url)
            up.clear()
            print("%s: %s" % (name, json.dumps(r)), file=sys.stderr)
        results["codex proxy"]["peak_rss_MiB"] = vm_hwm_mib(proxy.proc.pid)
    finally:
        proxy.stop()
        if nginx:
            nginx.stop()
        up.stop()
        shutil.rmtree(home, ignore_errors=True)
    direct = results["direct"]
    print("| path | p50 latency | p99 latency | added p50 | req/s (32 conns) | download | upload | 100 SSE streams |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print("| %s | %.0f µs | %.0f µs | %s | %s | %.0f MB/s | %.0f MB/s | %.2f s |" % (
            name, r["p50_us"], r["p99_us"],
            "-" if name == "direct" else "%+.0f µs" % (r["p50_us"] - direct["p50_us"]),
            "%.0f" % r["rps_c32"] if r["rps_c32"] else "n/a",
            r["download_MBps"], r["upload_MBps"], r["streams_100_s"]))
    if "peak_rss_MiB" in results.get("codex proxy", {}):
        print("\ncodex proxy peak RSS over the whole run: %.1f MiB" % results["codex proxy"]["peak_rss_MiB"])
    print("\n(%s, Python %s, %d CPUs, transfer size %d MiB)" % (
        os.uname().machine, sys.version.split()[0], os.cpu_count() or 0, size >> 20))
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
