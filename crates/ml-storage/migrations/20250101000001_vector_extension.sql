-- pgvector. Creating an extension needs a privileged role (superuser, or the
-- database owner when the extension is marked trusted); on a managed database
-- where it already exists this is a no-op, whatever the worker's role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        CREATE EXTENSION vector;
    END IF;
EXCEPTION
    -- Another session created it between the check and the CREATE.
    WHEN unique_violation OR duplicate_object THEN
        NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'the pgvector extension is not installed in database % and role % may not create it',
            current_database(), current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'run CREATE EXTENSION vector; once as a superuser, then restart the worker';
    WHEN undefined_file THEN
        RAISE EXCEPTION 'the pgvector extension is not available on this PostgreSQL server'
            USING ERRCODE = 'undefined_file',
                  HINT = 'install pgvector (https://github.com/pgvector/pgvector) on the database server';
END
$$;
