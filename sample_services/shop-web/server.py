"""The shop's web service: a tiny HTTP server listing its products from DATABASE_URL.

/healthz answers without the database, so a deploy's health check says whether the
server is up; / shows what the migrations seeded.
"""

import http.server
import os

PORT = int(os.environ.get("PORT", "10000"))


def products() -> list[str]:
    import psycopg

    try:
        with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as db:
            rows = db.execute("SELECT name, price_cents FROM products ORDER BY id").fetchall()
    except psycopg.errors.UndefinedTable:
        return ["no products yet: run python migrate.py"]
    return [f"{name} ${cents / 100:.2f}" for name, cents in rows]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            body = "ok\n"
        else:
            try:
                body = "shop-web is up\n" + "".join(line + "\n" for line in products())
            except Exception as exc:  # the page says why rather than a bare 500
                self.send_response(503)
                self.end_headers()
                self.wfile.write(f"shop-web cannot read its database: {exc}\n".encode())
                return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())


if __name__ == "__main__":
    print(f"listening on {PORT}", flush=True)
    http.server.ThreadingHTTPServer(("", PORT), Handler).serve_forever()
