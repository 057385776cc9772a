"""http.server on the inherited fd 3: ThreadingHTTPServer (THREADING=1) or HTTPServer, blocking serve_forever."""
import http.server, os, socket, signal, sys, threading, time
time.sleep(float(os.environ.get("SLOW_IMPORT", "0")))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers(); self.wfile.write(b"ok\n")
    def log_message(self, *a): pass
cls = http.server.ThreadingHTTPServer if os.environ.get("THREADING") else http.server.HTTPServer
srv = cls(("127.0.0.1", 0), H, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
srv.serve_forever()
