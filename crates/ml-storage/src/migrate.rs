//! Schema set-up: embedded migrations for the static tables, and the
//! `embeddings` table whose vector dimension depends on the configured model.
//!
//! Both are safe when many replicas start at once. The static part runs
//! through sqlx's migrator, which (sqlx 0.9, `sqlx-postgres` `migrate.rs`)
//! takes a session-level `pg_advisory_lock` keyed on the database name before
//! reading or applying anything and releases it afterwards; each migration
//! runs in its own transaction together with its bookkeeping row. The
//! embeddings part runs in one transaction under `pg_advisory_xact_lock`
//! with a key of its own.

use sqlx::PgConnection;
use sqlx::migrate::Migrator;

use crate::error::{Result, StorageError};
use crate::store::Store;

/// Bookkeeping table of the embedded migrations. Not sqlx's default
/// `_sqlx_migrations`, so another sqlx application sharing the gateway's
/// database keeps its own history and neither rejects the other's versions.
const MIGRATIONS_TABLE: &str = "_ml_workers_migrations";

/// `pg_advisory_xact_lock` key serialising [`Store::ensure_embeddings_table`]
/// across replicas ("mlwk" "embd" in ASCII).
const EMBEDDINGS_SCHEMA_LOCK: i64 = 0x6d6c_776b_656d_6264;

/// pgvector's HNSW index handles at most 2000 dimensions for `vector`.
const MAX_INDEXED_DIMENSION: usize = 2000;

/// Columns [`Store::replace_embeddings`](crate::Store::replace_embeddings)
/// writes; an `embeddings` table created elsewhere must have all of them.
const EMBEDDING_COLUMNS: &[&str] = &[
    "id",
    "share_id",
    "embedding",
    "dimensions",
    "embedding_type",
    "content_type",
    "chunk_key",
    "chunk_index",
    "total_chunks",
    "content_hash",
    "model",
    "chunk_text",
    "start_offset",
    "end_offset",
    "start_time",
    "end_time",
    "token_count",
    "metadata",
    "created_at",
    "updated_at",
];

impl Store {
    /// Applies the migrations and, given the model's dimension, ensures the
    /// embeddings table: what a worker calls once at start-up.
    ///
    /// # Errors
    ///
    /// See [`migrate`](Self::migrate) and
    /// [`ensure_embeddings_table`](Self::ensure_embeddings_table).
    pub async fn prepare(&self, dimension: Option<usize>) -> Result<()> {
        self.migrate().await?;
        if let Some(dimension) = dimension {
            self.ensure_embeddings_table(dimension).await?;
        }
        Ok(())
    }

    /// Applies the embedded migrations (the pgvector extension and
    /// `ml_results`), each at most once per database.
    ///
    /// # Errors
    ///
    /// [`StorageError::Migrate`]: transient when the database went away or a
    /// lock wait timed out (another replica migrating for longer than
    /// `lock_timeout`), permanent when a migration itself fails (for
    /// example pgvector missing and the role not allowed to create it) or the
    /// recorded history disagrees with the embedded one.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator: Migrator = sqlx::migrate!("./migrations");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);

        // A pool of one connection of its own: sqlx returns early without
        // `pg_advisory_unlock` when a step fails, and closing this pool ends
        // the session, which releases the lock in every case instead of
        // leaving it held by a connection parked in the shared pool.
        let options = (*self.pool().connect_options()).clone();
        let pool = self
            .session()
            .pool_options(1)
            .connect_with(options)
            .await
            .map_err(StorageError::database("connecting for migrations"))?;
        let outcome = migrator.run(&pool).await;
        pool.close().await;
        outcome.map_err(StorageError::Migrate)?;
        tracing::debug!("database migrations applied");
        Ok(())
    }

    /// Creates `embeddings` with `embedding vector(dimension)`, its indexes
    /// (an HNSW cosine index, which the gateway's search uses), and checks
    /// that an existing table has the same dimension.
    ///
    /// Indexes are only created when no equivalent one exists, so a table
    /// the gateway created with its own index names is left as it is.
    ///
    /// # Errors
    ///
    /// [`StorageError::DimensionMismatch`] when the existing column has
    /// another dimension; [`StorageError::SchemaMismatch`] when an existing
    /// table lacks columns this crate writes; [`StorageError::InvalidInput`]
    /// for a dimension of 0 or above 2000 (pgvector cannot index it);
    /// [`StorageError::Database`] otherwise.
    pub async fn ensure_embeddings_table(&self, dimension: usize) -> Result<()> {
        if !(1..=MAX_INDEXED_DIMENSION).contains(&dimension) {
            return Err(StorageError::InvalidInput {
                reason: format!(
                    "embedding dimension {dimension} is outside 1..={MAX_INDEXED_DIMENSION}, \
                     the range pgvector's HNSW index supports"
                ),
            });
        }
        let op = StorageError::database;
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(op("starting the embeddings schema transaction"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EMBEDDINGS_SCHEMA_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(op("waiting for the embeddings schema lock"))?;

        let create = format!(
            "CREATE TABLE IF NOT EXISTS embeddings (
                id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                share_id       uuid NOT NULL,
                embedding      vector({dimension}) NOT NULL,
                dimensions     integer NOT NULL,
                embedding_type varchar(32) NOT NULL,
                content_type   varchar(32) NOT NULL,
                chunk_key      varchar(200) NOT NULL DEFAULT '',
                chunk_index    integer NOT NULL,
                total_chunks   integer NOT NULL,
                content_hash   char(64) NOT NULL,
                model          varchar(100) NOT NULL,
                chunk_text     text,
                start_offset   integer,
                end_offset     integer,
                start_time     double precision,
                end_time       double precision,
                token_count    integer,
                metadata       jsonb NOT NULL DEFAULT '{{}}',
                created_at     timestamp NOT NULL DEFAULT now(),
                updated_at     timestamp NOT NULL DEFAULT now(),
                CONSTRAINT embeddings_set_chunk_key
                    UNIQUE (share_id, embedding_type, content_type, chunk_key, chunk_index)
            )"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut *tx)
            .await
            .map_err(op("creating the embeddings table"))?;

        check_columns(&mut tx).await?;
        let table_dimension =
            read_dimension(&mut tx)
                .await?
                .ok_or_else(|| StorageError::SchemaMismatch {
                    reason: "the embeddings table vanished while it was being prepared".into(),
                })?;
        if table_dimension != dimension {
            return Err(StorageError::DimensionMismatch {
                table_dimension,
                model_dimension: dimension,
            });
        }

        // Share lookups and the gateway's join: the unique constraint above
        // leads with share_id; a table made elsewhere may lack such an index.
        if !has_index_leading_with_share_id(&mut tx).await? {
            sqlx::query(
                "CREATE INDEX IF NOT EXISTS embeddings_share_id_idx ON embeddings (share_id)",
            )
            .execute(&mut *tx)
            .await
            .map_err(op("creating the share_id index"))?;
        }
        if !has_hnsw_cosine_index(&mut tx).await? {
            sqlx::query(
                "CREATE INDEX IF NOT EXISTS embeddings_embedding_hnsw \
                 ON embeddings USING hnsw (embedding vector_cosine_ops)",
            )
            .execute(&mut *tx)
            .await
            .map_err(op("creating the HNSW cosine index"))?;
        }
        tx.commit()
            .await
            .map_err(op("committing the embeddings schema"))?;

        self.remember_dimension(dimension);
        tracing::debug!(dimension, "embeddings table ready");
        Ok(())
    }
}

/// The declared dimension of `embeddings.embedding` (pgvector stores it as
/// the column's type modifier), or `None` when the table does not exist.
pub(crate) async fn read_dimension(conn: &mut PgConnection) -> Result<Option<usize>> {
    let row: Option<(String, i32)> = sqlx::query_as(
        "SELECT t.typname::text, a.atttypmod
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = to_regclass('embeddings')
           AND a.attname = 'embedding' AND NOT a.attisdropped",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(StorageError::database("reading the embeddings dimension"))?;

    let Some((type_name, typmod)) = row else {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('embeddings') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await
            .map_err(StorageError::database("looking up the embeddings table"))?;
        return if exists {
            Err(StorageError::SchemaMismatch {
                reason: "the embeddings table has no embedding column".into(),
            })
        } else {
            Ok(None)
        };
    };
    if type_name != "vector" {
        return Err(StorageError::SchemaMismatch {
            reason: format!(
                "embeddings.embedding has type {type_name}, expected pgvector's vector(N)"
            ),
        });
    }
    usize::try_from(typmod)
        .ok()
        .filter(|dimension| *dimension > 0)
        .map(Some)
        .ok_or_else(|| StorageError::SchemaMismatch {
            reason: "embeddings.embedding is declared without a dimension; \
                     HNSW indexing needs vector(N): alter or drop the table"
                .into(),
        })
}

/// Fails when a pre-existing `embeddings` table lacks a column we write.
async fn check_columns(conn: &mut PgConnection) -> Result<()> {
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute
         WHERE attrelid = to_regclass('embeddings') AND attnum > 0 AND NOT attisdropped",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StorageError::database("reading the embeddings columns"))?;
    let missing: Vec<&str> = EMBEDDING_COLUMNS
        .iter()
        .copied()
        .filter(|column| !present.iter().any(|name| name == column))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StorageError::SchemaMismatch {
            reason: format!(
                "the existing embeddings table lacks column(s) {}; add them or drop the \
                 table so it is re-created",
                missing.join(", ")
            ),
        })
    }
}

async fn has_index_leading_with_share_id(conn: &mut PgConnection) -> Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (
            SELECT 1 FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = to_regclass('embeddings') AND a.attname = 'share_id'
              AND i.indpred IS NULL)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StorageError::database("looking up the share_id index"))
}

async fn has_hnsw_cosine_index(conn: &mut PgConnection) -> Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (
            SELECT 1 FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am am ON am.oid = c.relam
            JOIN pg_opclass oc ON oc.oid = i.indclass[0]
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = to_regclass('embeddings') AND a.attname = 'embedding'
              AND am.amname = 'hnsw' AND oc.opcname = 'vector_cosine_ops'
              AND i.indpred IS NULL AND i.indisvalid)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StorageError::database("looking up the HNSW index"))
}
