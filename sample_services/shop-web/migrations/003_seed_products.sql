INSERT INTO products (name, price_cents) VALUES ('teapot', 2500), ('cup', 800);
