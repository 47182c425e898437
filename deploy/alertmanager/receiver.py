"""A webhook receiver for the compose stack: logs every alert Alertmanager posts.

    python receiver.py [PORT]        # 8080 by default; 0 picks a free port

It prints `listening on PORT` once ready, then one line per alert of each POST:
`<status> <alertname> <labels> <summary>`. Standard library only."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def lines(body: dict) -> list[str]:
    alerts = body.get("alerts")
    if not isinstance(alerts, list):  # not Alertmanager's shape: log it whole
        return [f"received {json.dumps(body, sort_keys=True)}"]
    out = []
    for alert in alerts:
        labels = dict(alert.get("labels", {}))
        name = labels.pop("alertname", "?")
        summary = alert.get("annotations", {}).get("summary", "")
        status = alert.get("status", body.get("status", "?"))
        out.append(f"{status} {name} {json.dumps(labels, sort_keys=True)} {summary}")
    return out


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_error(400, "body is not JSON")
            return
        logged = lines(body if isinstance(body, dict) else {"body": body})
        for line in logged:
            print(line, flush=True)
        answer = json.dumps({"logged": len(logged)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:  # a health check
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # one line per alert instead
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = ThreadingHTTPServer(("0.0.0.0", port), Receiver)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
