-- Results shared with the API gateway (CONTRACT.md section 5). The gateway's
-- own database may already hold this table, with a foreign key to shares(id);
-- standalone it is created here without one. gen_random_uuid() is core since
-- PostgreSQL 13.
CREATE TABLE IF NOT EXISTS ml_results (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    share_id      uuid NOT NULL,
    task_type     varchar(50) NOT NULL,
    result_data   jsonb NOT NULL,
    model_version varchar(100),
    processing_ms integer,
    created_at    timestamp NOT NULL DEFAULT now(),
    UNIQUE (share_id, task_type)
);
