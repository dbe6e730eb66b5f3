-- deliberately broken: shows a failed job and its exit code (3)
ALTER TABEL products ADD COLUMN price_cents INTEGER;
