INSERT INTO products (id, name, price_cents) VALUES (1, 'teapot', 2500), (2, 'cup', 800);
