-- A type change rewrites every row under ACCESS EXCLUSIVE: nothing reads or writes orders meanwhile.
ALTER TABLE orders ALTER COLUMN quantity TYPE BIGINT;
