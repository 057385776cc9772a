"""A plain blocking accept() loop on fd 3 (the simplest server there is)."""
import os, socket, time
time.sleep(float(os.environ.get("SLOW_IMPORT", "0")))
s = socket.socket(fileno=3)
s.setblocking(True)
while True:
    c, _ = s.accept()
    c.recv(4096); c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"); c.close()
