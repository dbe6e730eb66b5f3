"""The reports private service: answers on PORT (its own start command)."""

import http.server
import os

http.server.ThreadingHTTPServer(("", int(os.environ.get("PORT", "10000"))), http.server.SimpleHTTPRequestHandler).serve_forever()
