"""An independent client for hyperglass-worker's drain contract, using Python's `websockets`.

Starts the worker as systemd would (a listening socket on fd 3, LISTEN_FDS, LISTEN_PID, NOTIFY_SOCKET),
waits for READY=1, echoes over a WebSocket, starts a slow HTTP request, sends SIGTERM, and checks:
STOPPING=1, WATCHDOG=1 at half of WATCHDOG_USEC, the WebSocket gets close code 1001, the slow request completes with 200 and
`Connection: close`, and the worker exits 0. Prints one line per check; exit status 0 when all pass.
Usage: drain_client.py PATH_TO_hyperglass-worker
"""
import asyncio, os, signal, socket, subprocess, sys, tempfile, time

import websockets


def main(binary):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    notify_dir = tempfile.mkdtemp()
    notify_path = os.path.join(notify_dir, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="http", NOTIFY_SOCKET=notify_path,
               HYPERGLASS_WORKER_ID="7", HYPERGLASS_DRAIN_TIMEOUT="10s",
               WATCHDOG_USEC="200000")
    # LISTEN_PID must be the worker's own pid: the shell moves the socket to fd 3, then execs into
    # the worker, which keeps the shell's pid.
    fd = listener.fileno()
    script = f'exec 3<&{fd} {fd}<&-; export LISTEN_PID=$$; exec "$0"' if fd != 3 else 'export LISTEN_PID=$$; exec "$0"'
    worker = subprocess.Popen(["/bin/sh", "-c", script, binary], env=env, pass_fds=[fd])
    try:
        return asyncio.run(drive(worker, port, notify))
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        notify.close()
        os.unlink(notify_path)
        os.rmdir(notify_dir)


def expect(condition, text):
    print(("ok   " if condition else "FAIL ") + text, flush=True)
    return condition


async def drive(worker, port, notify):
    ok = True
    loop = asyncio.get_running_loop()
    message = await loop.run_in_executor(None, notify.recv, 4096)
    ok &= expect(message == b"READY=1", f"worker sent READY=1 (got {message!r})")

    ws = await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{port}/ws"), 5)
    await ws.send("héllo")
    ok &= expect(await asyncio.wait_for(ws.recv(), 5) == "héllo", "WebSocket echoes text")
    await ws.send(b"\x00\x01\x02")
    ok &= expect(await asyncio.wait_for(ws.recv(), 5) == b"\x00\x01\x02", "WebSocket echoes binary")

    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(b"GET /sleep?ms=700 HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.2)

    worker.send_signal(signal.SIGTERM)
    messages = []
    while not any(m.startswith(b"STOPPING=1") for m in messages):
        messages.append(await loop.run_in_executor(None, notify.recv, 4096))
    ok &= expect(True, "worker sent STOPPING=1")
    watchdogs = messages.count(b"WATCHDOG=1")
    ok &= expect(watchdogs >= 2, f"worker sent WATCHDOG=1 every 100 ms while serving ({watchdogs} seen)")

    try:
        await asyncio.wait_for(ws.recv(), 5)
        ok &= expect(False, "WebSocket should have been closed")
    except websockets.ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
        ok &= expect(code == 1001, f"WebSocket closed with 1001 (got {code})")

    response = await asyncio.wait_for(reader.read(), 5)
    ok &= expect(response.startswith(b"HTTP/1.1 200 "), f"in-flight slow request completed with 200 ({response[:15]!r})")
    ok &= expect(b"Connection: close" in response, "and was answered with Connection: close")
    writer.close()

    deadline = time.monotonic() + 10
    while worker.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    ok &= expect(worker.poll() == 0, f"worker exited 0 (got {worker.poll()})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
