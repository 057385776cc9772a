#!/usr/bin/env python3
"""GET /api/info on 127.0.0.1:PORT from 4 threads, a new connection each, for SECONDS; prints one line:
"N ok, M failed (when the failures were; the first few errors)". Used by hyperglass_systemd.sh."""
import http.client, sys, threading, time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
ok = failed = 0
errors, first, last = [], None, None
lock = threading.Lock()
t0 = time.monotonic()


def run():
    global ok, failed, first, last
    while time.monotonic() - t0 < seconds:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/info", headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
            conn.close()
            error = None if response.status == 200 else str(response.status)
        except Exception as e:
            error = type(e).__name__
        with lock:
            if error is None:
                ok += 1
            else:
                failed += 1
                now = time.monotonic() - t0
                first = now if first is None else first
                last = now
                if len(errors) < 5:
                    errors.append(error)
        time.sleep(0.01)


threads = [threading.Thread(target=run) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
span = f"failures from {first:.2f} s to {last:.2f} s: {errors}" if failed else "no failures"
print(f"{ok} ok, {failed} failed ({span})")
