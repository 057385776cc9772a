#!/usr/bin/env python3
"""HTTP and WebSocket clients that run inside the test guest (Python's standard library only).

Every mode is bounded in time and prints one JSON line with what it saw:
  get URL                    one GET
  load URL SECONDS           GETs on fresh connections back to back; counts failures and worker pids
  until-file URL PATH        like load, until PATH exists (at most 120 s)
  ws HOST PORT SECONDS       opens /ws, checks the echo, then waits for the server's close frame
"""
import base64, http.client, json, os, socket, struct, sys, time


def get(host, port, path, timeout=10):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def parse(url):
    assert url.startswith("http://")
    rest = url[len("http://"):]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port), "/" + path


def load(url, stop):
    host, port, path = parse(url)
    ok, failed, pids, errors = 0, 0, set(), []
    while not stop():
        try:
            status, body = get(host, port, path, timeout=5)
            if status == 200:
                ok += 1
                if body.startswith("{"):
                    pids.add(json.loads(body).get("pid"))
            else:
                failed += 1
                errors.append(f"HTTP {status}")
        except Exception as error:  # every failure counts, whatever its kind
            failed += 1
            errors.append(repr(error))
    return {"ok": ok, "failed": failed, "pids": sorted(p for p in pids if p), "errors": errors[:10]}


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def read_frame(sock):
    b1, b2 = recv_exact(sock, 2)
    length = b2 & 0x7F
    if length == 126:
        length = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", recv_exact(sock, 8))[0]
    mask = recv_exact(sock, 4) if b2 & 0x80 else None
    payload = recv_exact(sock, length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b1 & 0x0F, payload


def send_frame(sock, opcode, payload):
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def websocket(host, port, seconds):
    result = {"opened": False, "echo": False, "close_code": None, "error": None}
    sock = socket.create_connection((host, port), timeout=seconds)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += recv_exact(sock, 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            result["error"] = head.split(b"\r\n", 1)[0].decode()
            return result
        result["opened"] = True
        send_frame(sock, 0x1, b"ping from the acceptance suite")
        opcode, payload = read_frame(sock)
        result["echo"] = opcode == 0x1 and payload == b"ping from the acceptance suite"
        print(json.dumps({"event": "open"}), flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            opcode, payload = read_frame(sock)
            if opcode == 0x8:
                result["close_code"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                send_frame(sock, 0x8, payload[:2])
                break
    except Exception as error:
        result["error"] = repr(error)
    finally:
        sock.close()
    return result


def main(argv):
    mode = argv[1]
    if mode == "get":
        host, port, path = parse(argv[2])
        try:
            status, body = get(host, port, path)
            out = {"status": status, "body": body}
        except Exception as error:
            out = {"status": None, "error": repr(error)}
    elif mode == "load":
        end = time.monotonic() + float(argv[3])
        out = load(argv[2], lambda: time.monotonic() >= end)
    elif mode == "until-file":
        end = time.monotonic() + 120
        out = load(argv[2], lambda: os.path.exists(argv[3]) or time.monotonic() >= end)
    elif mode == "ws":
        out = websocket(argv[2], int(argv[3]), float(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv)
