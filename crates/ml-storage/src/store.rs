//! The connection pool every operation goes through.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::StoreConfig;
use crate::error::{Result, StorageError};

/// A handle on the database: a connection pool plus what the store learned
/// about the schema. Cheap to clone; clones share the pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    /// How connections are set up, for the extra pool migrations use.
    session: Arc<SessionSettings>,
    /// Dimension of `embeddings.embedding`, learned by
    /// [`ensure_embeddings_table`](Store::ensure_embeddings_table) or on the
    /// first write.
    dimension: Arc<OnceLock<usize>>,
}

impl Store {
    /// Opens the pool and one connection right away, so an unreachable or
    /// misconfigured database is reported here rather than on the first task.
    ///
    /// Every connection the pool opens runs `SET lock_timeout` and
    /// `SET statement_timeout` from `config`.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`] when the URL does not parse;
    /// [`StorageError::Connect`] when the first connection fails (transient
    /// when the server is unreachable or starting, so callers retry).
    pub async fn connect(config: &StoreConfig) -> Result<Self> {
        let options = PgConnectOptions::from_str(&config.url).map_err(|error| {
            StorageError::InvalidConfig {
                reason: format!("DATABASE_URL {}: {error}", config.redacted_url()),
            }
        })?;
        if config.max_connections == 0 {
            return Err(StorageError::InvalidConfig {
                reason: "max_connections must be at least 1".into(),
            });
        }
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let session = SessionSettings::from(config);
        let pool = session
            .pool_options(config.max_connections)
            .connect_with(options)
            .await
            .map_err(|source| StorageError::Connect { target, source })?;
        tracing::debug!(url = %config.redacted_url(), "connected to PostgreSQL");
        Ok(Self {
            pool,
            session: Arc::new(session),
            dimension: Arc::new(OnceLock::new()),
        })
    }

    /// Round-trips `SELECT 1`, for readiness probes.
    ///
    /// # Errors
    ///
    /// [`StorageError::Database`] when no connection can be had or the server
    /// does not answer.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StorageError::database("pinging the database"))?;
        Ok(())
    }

    /// The underlying pool, for queries this crate does not wrap.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later calls fail with a transient error.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// How this store sets up connections.
    pub(crate) fn session(&self) -> &SessionSettings {
        &self.session
    }

    /// The embeddings dimension, once known.
    pub(crate) fn known_dimension(&self) -> Option<usize> {
        self.dimension.get().copied()
    }

    /// Remembers the embeddings dimension read from the catalog.
    pub(crate) fn remember_dimension(&self, dimension: usize) {
        // A second, different value cannot happen: the column's type only
        // changes if someone drops the table, and then every worker must be
        // restarted anyway (their HNSW plans and caches are stale too).
        let _ = self.dimension.set(dimension);
    }
}

/// Per-connection settings every pool of the store applies.
#[derive(Clone, Debug)]
pub(crate) struct SessionSettings {
    acquire_timeout: Duration,
    /// `lock_timeout` as PostgreSQL reads it (`"10000ms"`).
    lock_timeout: String,
    /// `statement_timeout` as PostgreSQL reads it.
    statement_timeout: String,
}

impl From<&StoreConfig> for SessionSettings {
    fn from(config: &StoreConfig) -> Self {
        Self {
            acquire_timeout: config.acquire_timeout,
            lock_timeout: format!("{}ms", config.lock_timeout.as_millis()),
            statement_timeout: format!("{}ms", config.statement_timeout.as_millis()),
        }
    }
}

impl SessionSettings {
    /// Pool options that `SET lock_timeout` and `statement_timeout` on
    /// every new connection.
    pub(crate) fn pool_options(&self, max_connections: u32) -> PgPoolOptions {
        let settings = self.clone();
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(self.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let settings = settings.clone();
                Box::pin(async move {
                    sqlx::query(
                        "SELECT set_config('lock_timeout', $1, false), \
                                set_config('statement_timeout', $2, false)",
                    )
                    .bind(settings.lock_timeout)
                    .bind(settings.statement_timeout)
                    .execute(conn)
                    .await
                    .map(drop)
                })
            })
    }
}
