-- Enough orders that rewriting the table takes seconds (a rehearsal shows the lock it takes).
INSERT INTO orders (id, product_id, quantity) SELECT g, 1 + g % 2, 1 + g % 5 FROM generate_series(1, 400000) AS g;
