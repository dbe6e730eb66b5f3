-- deliberately broken: the first statement works, the second has a typo, so the whole
-- migration rolls back (PostgreSQL's DDL is transactional): no stock column, exit code 3
ALTER TABLE products ADD COLUMN stock INTEGER NOT NULL DEFAULT 0;
ALTER TABEL orders ADD COLUMN shipped BOOLEAN;
