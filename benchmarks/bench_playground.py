"""Updates per second of the playground while it plays: a 2-8-8-1 network on 500 spiral points.

One update = one epoch (250 training points in mini-batches of 10: 25 chainrule steps) + the
losses on the training and test points + a binary frame (the 64×64 output heatmap and a 16×16
thumbnail per node) sent over the WebSocket and acknowledged. Measured two ways, interleaved:

- server: a WebSocket client that acknowledges each frame as soon as it arrives (the server's
  ceiling: training + measuring + drawing the frame);
- page: the real page in headless Chromium (frames decoded and drawn, counted by the page).

The server runs in its own process (``chainrule playground --no-browser``), as a user runs it.

    python benchmarks/bench_playground.py [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = {
    "dataset": "spiral",
    "samples": 500,
    "trainRatio": 50,
    "networkShape": "8,8",
    "batchSize": 10,
    "features": "x1,x2",
    "activation": "tanh",
    "learningRate": 0.03,
}
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chainrule.cli",
            "playground",
            "--no-browser",
            "--port",
            str(port),
            "--dataset",
            "spiral",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/api/state", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(
                    "the playground server did not start: "
                    + proc.stderr.read().decode(errors="replace")[-500:]
                ) from None
            time.sleep(0.2)
    return proc, base, port


def post_settings(base):
    req = urllib.request.Request(
        base + "/api/settings",
        data=json.dumps(SETTINGS).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()
    urllib.request.urlopen(
        urllib.request.Request(base + "/api/reset", method="POST"), timeout=10
    ).read()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def server_rate(base, port, seconds: float, pid: int) -> tuple:
    from websockets.sync.client import connect

    post_settings(base)
    with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        ws.send(json.dumps({"cmd": "play"}))
        ws.recv(timeout=30)  # the first frame: warm
        ws.send(json.dumps({"cmd": "ack"}))
        n, nbytes, start, cpu0 = 0, 0, time.perf_counter(), cpu_seconds(pid)
        while time.perf_counter() - start < seconds:
            data = ws.recv(timeout=30)
            ws.send(json.dumps({"cmd": "ack"}))
            n += 1
            nbytes += len(data)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu0
        ws.send(json.dumps({"cmd": "pause"}))
    return n / elapsed, nbytes / max(n, 1), cpu / max(n, 1)


def page_rate(browser, base, seconds: float) -> float:
    post_settings(base)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    frag = "&".join(f"{k}={v}" for k, v in SETTINGS.items())
    page.goto(base + "/#" + frag)
    page.wait_for_selector("body[data-ready='1']", timeout=30000)
    page.click("[data-testid=play]")
    page.wait_for_function("window.__pg.frames >= 3", timeout=30000)
    f0, t0, d0 = page.evaluate("[window.__pg.frames, performance.now(), window.__pg.drawMs]")
    time.sleep(seconds)
    f1, t1, d1 = page.evaluate("[window.__pg.frames, performance.now(), window.__pg.drawMs]")
    page.click("[data-testid=play]")
    page.close()
    return (f1 - f0) / ((t1 - t0) / 1000), (d1 - d0) / max(1, f1 - f0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    proc, base, port = start_server()
    server, page, sizes, cpus, draw_ms = [], [], [], [], []
    try:
        browser = None
        try:
            from playwright.sync_api import sync_playwright

            pw = sync_playwright().start()
            if os.path.exists(CHROMIUM):
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except ImportError:
            pw = None
        for _ in range(args.rounds):  # interleaved: the machine's load hits both alike
            r, size, cpu = server_rate(base, port, args.seconds, proc.pid)
            server.append(r)
            sizes.append(size)
            cpus.append(cpu)
            time.sleep(1.0)
            if browser is not None:
                r, ms = page_rate(browser, base, args.seconds)
                page.append(r)
                draw_ms.append(ms)
                time.sleep(1.0)
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"playground, 2-8-8-1 on 500 spiral points (250 train, batch 10), {args.rounds} rounds "
        f"of {args.seconds:g} s, load average {load:.1f} on {os.cpu_count()} cores"
    )
    print(f"frame size: {statistics.median(sizes) / 1024:.1f} KiB")
    cpu = statistics.median(cpus)
    print(
        f"server CPU time per update: {1000 * cpu:.1f} ms (median; "
        f"{', '.join(f'{1000 * c:.1f}' for c in cpus)}): {1 / cpu:.0f} updates/s on a free core"
    )
    print("| measured | updates/s (median) | rounds |")
    print("|---|---|---|")
    print(
        f"| server (WebSocket client, ack on arrival) | {statistics.median(server):.1f} | "
        f"{', '.join(f'{v:.1f}' for v in server)} |"
    )
    if page:
        print(
            f"| page in headless Chromium (drawn) | {statistics.median(page):.1f} | "
            f"{', '.join(f'{v:.1f}' for v in page)} |"
        )
        print(
            f"page script time per frame (decode + draw, without the browser's paint): "
            f"{statistics.median(draw_ms):.1f} ms (median)"
        )
    else:
        print("| page in headless Chromium | not measured (no playwright or chromium) | |")


if __name__ == "__main__":
    main()
