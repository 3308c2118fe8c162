"""A local stand-in for PagerDuty's Events API v2 (used by `make demo`):
accepts POST /v2/enqueue and /v2/change/enqueue, answers 202, and appends
each event as one JSON line to the file named on the command line."""
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "a") as log:
            log.write(json.dumps({"path": self.path, "event": json.loads(body)}) + "\n")
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"success","message":"Event processed"}')

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
