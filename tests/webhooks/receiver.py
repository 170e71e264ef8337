"""A webhook receiver for tests/api/webhooks.rs: verifies every delivery with the standardwebhooks
library (the Standard Webhooks reference implementation from PyPI), never by hand.

Listens on 127.0.0.1 on a free port and prints the port as its first line. Deliveries go to
POST /hook/NAME, verified with NAME's secret; the test drives it through /control:
  PUT  /control/secret/NAME   body: the subscription's secret (whsec_...)
  PUT  /control/mode          body: up | down (500) | redirect (302) | garbage (not HTTP) | hang (no answer)
  PUT  /control/hang/NAME     deliveries to NAME alone get no answer
  GET  /control/received      [{name, id, timestamp, body}] of verified deliveries, in arrival order
  GET  /control/rejected      [{name, id, reason}] of deliveries that did not verify
  GET  /control/attempts      how many deliveries arrived, answered or not
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

lock = threading.Lock()
secrets = {}
received = []
rejected = []
state = {"mode": "up", "attempts": 0, "hanging": set()}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def body(self):
        return self.rfile.read(int(self.headers.get("content-length", "0")))

    def answer(self, status, payload=b""):
        self.send_response(status)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_PUT(self):
        body = self.body().decode()
        with lock:
            if self.path.startswith("/control/secret/"):
                secrets[self.path.removeprefix("/control/secret/")] = body
            elif self.path == "/control/mode":
                state["mode"] = body
            elif self.path.startswith("/control/hang/"):
                state["hanging"].add(self.path.removeprefix("/control/hang/"))
            else:
                return self.answer(404)
        self.answer(204)

    def do_GET(self):
        with lock:
            lists = {"/control/received": received, "/control/rejected": rejected, "/control/attempts": state["attempts"]}
            if self.path not in lists:
                return self.answer(404)
            payload = json.dumps(lists[self.path]).encode()
        self.answer(200, payload)

    def do_POST(self):
        body = self.body()
        name = self.path.removeprefix("/hook/")
        with lock:
            state["attempts"] += 1
            mode = "hang" if name in state["hanging"] else state["mode"]
        if mode == "hang":
            time.sleep(120)
            return
        if mode == "garbage":
            self.wfile.write(b"\x00\xffthis is not HTTP\r\n\r\n")
            self.close_connection = True
            return
        if mode == "down":
            return self.answer(500, b"down")
        if mode == "redirect":
            self.send_response(302)
            self.send_header("location", "http://127.0.0.1:9/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        headers = {key: value for key, value in self.headers.items()}
        entry = {"name": name, "id": headers.get("webhook-id"), "timestamp": headers.get("webhook-timestamp")}
        try:
            with lock:
                secret = secrets[name]
            Webhook(secret).verify(body, headers)
        except Exception as error:  # noqa: BLE001 - every failure is a rejection to report
            with lock:
                rejected.append({**entry, "reason": repr(error)})
            return self.answer(400, b"does not verify")
        with lock:
            received.append({**entry, "body": body.decode()})
        self.answer(204)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
