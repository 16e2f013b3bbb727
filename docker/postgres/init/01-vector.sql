-- Runs once, when the pgvector container creates its data directory.
-- The workers' migrations need the extension and create it themselves when
-- they connect as a superuser; creating it here also covers a non-superuser
-- POSTGRES_USER for the workers.
CREATE EXTENSION IF NOT EXISTS vector;
