"""Benchmark: the Python SDK's `check()` against a raw HTTP round trip to the same real daemon, in
the same run, interleaved so both see the same machine. Prints p50/p90 and the overhead.

    GATEHOUSE_BIN=target/debug/gatehouse python sdks/python/bench/bench_check.py [--quick]
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from daemon import Daemon  # noqa: E402

from gatehouse import AsyncGatehouse, Gatehouse  # noqa: E402

TARGET_US = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, raw: list[float], sdk: list[float]) -> bool:
    """The overhead is p50(sdk) - p50(raw), the calls interleaved; the median of the paired
    differences (each SDK call against the raw call next to it) is printed beside it: when the two
    disagree by much, the machine was too noisy for the figure to mean much."""
    raw_p50, sdk_p50 = statistics.median(raw), statistics.median(sdk)
    overhead = sdk_p50 - raw_p50
    paired = statistics.median(s - r for s, r in zip(sdk, raw))
    ok = overhead <= TARGET_US
    print(f"{name}: raw p50 {raw_p50:.0f} µs p90 {percentile(raw, 0.9):.0f} µs | sdk p50 {sdk_p50:.0f} µs "
          f"p90 {percentile(sdk, 0.9):.0f} µs | overhead p50 {overhead:+.0f} µs (ratio {sdk_p50 / raw_p50:.3f}; "
          f"median of paired differences {paired:+.0f} µs) [target <= +{TARGET_US:.0f} µs: {'ok' if ok else 'OVER'}]")
    return ok


def sync_bench(d: Daemon, n: int) -> bool:
    conn = http.client.HTTPConnection(d.host, d.port)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Authorization": f"Bearer {d.agent_token}", "Content-Type": "application/json"}

    def raw_once() -> None:
        body = json.dumps({"tool": "get_weather", "input": {"city": "Lisbon"}, "session_id": "bench-raw",
                           "tool_use_id": uuid.uuid4().hex, "wait_ms": 25000}).encode()
        conn.request("POST", "/v1/check", body=body, headers=headers)
        answer = json.loads(conn.getresponse().read())
        assert answer["verdict"] == "allow"

    gate = Gatehouse(d.url, d.agent_token, session_id="bench-sdk")

    def sdk_once() -> None:
        assert gate.check("get_weather", {"city": "Lisbon"}).allowed

    for _ in range(50):
        raw_once()
        sdk_once()
    raw: list[float] = []
    sdk: list[float] = []
    for i in range(n):
        order = (raw_once, sdk_once) if i % 2 == 0 else (sdk_once, raw_once)
        for fn in order:
            start = time.perf_counter_ns()
            fn()
            (raw if fn is raw_once else sdk).append((time.perf_counter_ns() - start) / 1000)
    conn.close()
    gate.close()
    return report(f"python Gatehouse.check() vs http.client keep-alive (n={n})", raw, sdk)


async def async_bench(d: Daemon, n: int) -> bool:
    request_head = (f"POST /v1/check HTTP/1.1\r\nHost: {d.host}:{d.port}\r\nAuthorization: Bearer {d.agent_token}\r\n"
                    "Content-Type: application/json\r\n")
    reader, writer = await asyncio.open_connection(d.host, d.port)

    async def raw_once() -> None:
        # A raw keep-alive client: send, read the head, read Content-Length bytes, parse the JSON.
        body = json.dumps({"tool": "get_weather", "input": {"city": "Lisbon"}, "session_id": "bench-raw-async",
                           "tool_use_id": uuid.uuid4().hex, "wait_ms": 25000}).encode()
        writer.write(f"{request_head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
        assert head.startswith(b"http/1.1 200") and json.loads(await reader.readexactly(length))["verdict"] == "allow"

    gate = AsyncGatehouse(d.url, d.agent_token, session_id="bench-sdk-async")

    async def sdk_once() -> None:
        assert (await gate.check("get_weather", {"city": "Lisbon"})).allowed

    for _ in range(50):
        await raw_once()
        await sdk_once()
    raw: list[float] = []
    sdk: list[float] = []
    for i in range(n):
        order = (raw_once, sdk_once) if i % 2 == 0 else (sdk_once, raw_once)
        for fn in order:
            start = time.perf_counter_ns()
            await fn()
            (raw if fn is raw_once else sdk).append((time.perf_counter_ns() - start) / 1000)
    writer.close()
    return report(f"python AsyncGatehouse.check() vs asyncio streams keep-alive (n={n})", raw, sdk)


def main() -> int:
    quick = "--quick" in sys.argv
    n = 300 if quick else 3000
    d = Daemon()
    try:
        ok = sync_bench(d, n)
        ok = asyncio.run(async_bench(d, n)) and ok
    finally:
        d.stop()
    print(f"python sdk bench: {'ok' if ok else 'over target'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
