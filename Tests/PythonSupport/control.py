"""The control protocol from a test driver's side, shared by the Python drivers under Tests/.

One JSON request per connection, one JSON line back (README: Control protocol, version 1).
"""
import json, socket


def request(path, message, timeout):
    """Sends `message` to the control socket at `path`; the reply as a dict ({} when none came)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall((json.dumps(message) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
