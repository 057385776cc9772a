"""A real WebSocket client (Python `websockets`) for the drain tests of whole pools under `hyperglass start`.

Connects through the supervisor's socket, checks the echo, starts a slow HTTP request, then writes
OUT.armed: the test sends SIGTERM to the supervisor once that file exists. Then it waits (bounded) for the
WebSocket's close frame and the slow response and writes what it saw to OUT as one JSON object:
    {"echo": bool, "close_code": int|null, "close_reason": str, "slow_status": int|null,
     "slow_body": str, "slow_after_armed": seconds, "close_after_armed": seconds, "error": str|null}
Usage: ws_drain_client.py --port P --out FILE [--ws-path /ws] [--slow-path '/sleep?ms=1500']
Exit status 0 when it could write OUT, whatever it saw: the Swift test judges.
"""
import argparse
import asyncio
import json
import os
import time

import websockets


async def drive(args):
    result = {"echo": False, "close_code": None, "close_reason": "", "slow_status": None, "slow_body": "",
              "slow_after_armed": None, "close_after_armed": None, "error": None}
    ws = await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{args.port}{args.ws_path}", open_timeout=5), 8)
    try:
        await ws.send("héllo through hyperglass")
        text = await asyncio.wait_for(ws.recv(), 5)
        await ws.send(b"\x00\x01\x02")
        binary = await asyncio.wait_for(ws.recv(), 5)
        result["echo"] = text == "héllo through hyperglass" and binary == b"\x00\x01\x02"

        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", args.port), 5)
        writer.write(f"GET {args.slow_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.3)  # let a worker accept and start on it: it is in flight when SIGTERM comes
        with open(args.out + ".armed", "w") as armed:
            armed.write("armed\n")
        armed_at = time.monotonic()

        async def wait_close():
            try:
                while True:
                    await ws.recv()  # anything but a close is unexpected here; keep waiting for the close
            except websockets.ConnectionClosed as closed:
                result["close_code"] = closed.rcvd.code if closed.rcvd else None
                result["close_reason"] = closed.rcvd.reason if closed.rcvd else ""
                result["close_after_armed"] = round(time.monotonic() - armed_at, 3)

        async def wait_slow():
            response = await reader.read()
            result["slow_after_armed"] = round(time.monotonic() - armed_at, 3)
            head, _, body = response.partition(b"\r\n\r\n")
            status_line = head.split(b"\r\n", 1)[0].split()
            result["slow_status"] = int(status_line[1]) if len(status_line) > 1 else None
            result["slow_body"] = body.decode(errors="replace")
            writer.close()

        await asyncio.wait_for(asyncio.gather(wait_close(), wait_slow()), args.timeout)
    except Exception as error:  # reported, not raised: the Swift test prints it beside the supervisor's log
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        await ws.close()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ws-path", default="/ws")
    parser.add_argument("--slow-path", default="/sleep?ms=1500")
    parser.add_argument("--timeout", type=float, default=15)
    args = parser.parse_args()
    try:
        result = asyncio.run(drive(args))
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    with open(args.out + ".tmp", "w") as out:
        json.dump(result, out)
    # Renamed into place, so the test never reads half a file.
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
