"""The request budget against a simulated fixed-window limiter, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from connector.trackdechets.pacing import Pacer, parse_rate_headers

from .fakes import FakeClock, FirstHitWindowLimiter, FixedWindowLimiter


def run_flat_out(pacer: Pacer, clock: FakeClock, server: FixedWindowLimiter, seconds: float,
                 rtt: float = 0.002) -> None:
    end = clock.now + seconds
    while clock.now < end:
        assert pacer.acquire()
        status, headers = server.hit(clock.now + rtt / 2)
        clock.now += rtt
        pacer.observe(headers, status)


@pytest.mark.parametrize("phase", [0.0, 0.13, 0.5, 0.91])
def test_flat_out_sustains_the_ceiling_with_rare_429s(phase):
    # Trackdéchets' Redis store starts a window at the first request after the last one ended.
    clock = FakeClock(start=1_700_000_000 + phase)
    server = FirstHitWindowLimiter(limit=100, window=5.0, start=clock.now - 1.7)
    pacer = Pacer(limit=100, window=5.0, clock=clock, wait=clock.wait)
    windows = 20
    run_flat_out(pacer, clock, server, seconds=windows * 5.0)
    assert server.accepted >= 0.95 * windows * 100
    assert server.refused <= 0.01 * (server.accepted + server.refused)
    assert pacer.throttled == server.refused


@pytest.mark.parametrize("phase", [0.0, 0.5, 0.91])
def test_fixed_phase_windows_stay_safe(phase):
    # Windows at a fixed phase (express-rate-limit's memory store): never over the limit, and
    # at worst late by the reset's rounding (< 1 s of each 5 s window here).
    clock = FakeClock(start=1_700_000_000 + phase)
    server = FixedWindowLimiter(limit=100, window=5.0, start=clock.now - 1.7)
    pacer = Pacer(limit=100, window=5.0, clock=clock, wait=clock.wait)
    run_flat_out(pacer, clock, server, seconds=100.0)
    assert server.accepted >= 0.8 * 2000
    assert server.refused <= 0.01 * server.accepted


def test_without_headers_the_bucket_holds_the_share():
    clock = FakeClock()
    pacer = Pacer(limit=100, window=10.0, share=0.5, clock=clock, wait=clock.wait)
    start, sent = clock.now, 0
    while clock.now < start + 100:
        assert pacer.acquire()
        sent += 1
        pacer.observe({"content-type": "application/json"}, 200)
    # 50 at once (full bucket), then 5 per second.
    assert 540 <= sent <= 552


def test_a_429_pauses_everyone_until_the_reset():
    clock = FakeClock(start=1_700_000_000.0)
    pacer = Pacer(limit=10, window=60.0, clock=clock, wait=clock.wait)
    assert pacer.acquire()
    pacer.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000030",
                   "retry-after": "60"}, 429)
    assert pacer.throttled == 1
    assert pacer.remaining() == 0
    assert pacer.acquire()
    # The reset header (30 s) wins over express-rate-limit's whole-window Retry-After (60 s).
    assert 29.0 <= clock.now - 1_700_000_000.0 <= 30.0


def test_a_429_without_headers_honours_retry_after():
    clock = FakeClock(start=1_700_000_000.0)
    pacer = Pacer(clock=clock, wait=clock.wait)
    assert pacer.acquire()
    pacer.observe({"retry-after": "7"}, 429)
    assert pacer.acquire()
    assert clock.now - 1_700_000_000.0 == pytest.approx(7.0)


def test_when_the_server_says_plenty_remains_it_is_used():
    clock = FakeClock(start=1_700_000_000.0)
    pacer = Pacer(limit=1000, window=60.0, share=0.5, clock=clock, wait=clock.wait)
    assert pacer.acquire()
    pacer.observe({"x-ratelimit-remaining": "999", "x-ratelimit-reset": "1700000060"}, 200)
    for _ in range(999):
        assert pacer.acquire(timeout=0)
    assert not pacer.acquire(timeout=0)
    assert pacer.remaining() == 0


def test_in_flight_requests_are_counted_against_the_remaining():
    clock = FakeClock(start=1_700_000_000.0)
    pacer = Pacer(clock=clock, wait=clock.wait)
    assert pacer.acquire()
    pacer.observe({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1700000060"}, 200)
    assert pacer.acquire()
    assert pacer.acquire()
    assert pacer.remaining() == 1
    # A late answer saying more remains does not raise the count (answers come out of order).
    pacer.observe({"x-ratelimit-remaining": "9", "x-ratelimit-reset": "1700000060"}, 200)
    assert pacer.remaining() == 2


def test_stop_interrupts_a_wait_at_once():
    pacer = Pacer(limit=1, window=3600.0)
    assert pacer.acquire()
    pacer.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(2_000_000_000)}, 200)
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert pacer.acquire(stop=stop) is False


def test_timeout_gives_up():
    clock = FakeClock(start=1_700_000_000.0)
    pacer = Pacer(clock=clock, wait=clock.wait)
    assert pacer.acquire()
    pacer.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000060"}, 200)
    assert pacer.acquire(timeout=5.0) is False
    assert clock.now - 1_700_000_000.0 == pytest.approx(5.0)


def test_threads_share_one_budget():
    pacer = Pacer(limit=1000, window=60.0)
    pacer.acquire()
    far = str(2_000_000_000)
    pacer.observe({"x-ratelimit-remaining": "40", "x-ratelimit-reset": far}, 200)
    granted: list[int] = []

    def worker() -> None:
        n = 0
        while pacer.acquire(timeout=0):
            n += 1
        granted.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 40


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, (None, None, None)),
        ({"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "1700000060"},
         (1000, 12, 1_700_000_060.0)),
        ({"x-ratelimit-reset": "30"}, (None, None, 1_700_000_030.0)),
        ({"x-ratelimit-remaining": "lots"}, (None, None, None)),
    ],
)
def test_parse_rate_headers(headers, expected):
    assert tuple(parse_rate_headers(headers, now=1_700_000_000.0)) == expected


def test_share_must_be_a_fraction():
    with pytest.raises(ValueError, match="share"):
        Pacer(share=1.5)
