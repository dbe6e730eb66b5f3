"""The shop's web service: a tiny stdlib HTTP server (its own start command)."""

import http.server
import os

PORT = int(os.environ.get("PORT", "10000"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"shop-web is up\n")


if __name__ == "__main__":
    print(f"listening on {PORT}", flush=True)
    http.server.ThreadingHTTPServer(("", PORT), Handler).serve_forever()
