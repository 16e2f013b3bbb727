//! Database settings from the old deployment's environment names
//! (`DATABASE_URL`, or `POSTGRES_HOST/PORT/DB/USER/PASSWORD`).

use std::time::Duration;

use crate::config::StoreConfig;

/// Database connection settings, flattened into each worker's `Config`.
#[derive(Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Full PostgreSQL URL; when set it wins over the POSTGRES_* parts.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// PostgreSQL host.
    #[arg(long, env = "POSTGRES_HOST", default_value = "127.0.0.1")]
    pub postgres_host: String,

    /// PostgreSQL port.
    #[arg(long, env = "POSTGRES_PORT", default_value_t = 5432)]
    pub postgres_port: u16,

    /// PostgreSQL database name.
    #[arg(long, env = "POSTGRES_DB", default_value = "ml_workers")]
    pub postgres_db: String,

    /// PostgreSQL user.
    #[arg(long, env = "POSTGRES_USER", default_value = "postgres")]
    pub postgres_user: String,

    /// PostgreSQL password (never logged).
    #[arg(long, env = "POSTGRES_PASSWORD", hide_env_values = true)]
    pub postgres_password: Option<String>,

    /// Connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,

    /// Milliseconds a statement waits for a row lock before failing
    /// (a transient error: the task is retried).
    #[arg(long, env = "DATABASE_LOCK_TIMEOUT_MS", default_value_t = 10_000)]
    pub database_lock_timeout_ms: u64,

    /// Milliseconds a statement may run before it is cancelled.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = 60_000)]
    pub database_statement_timeout_ms: u64,
}

impl DatabaseArgs {
    /// The connection URL: `DATABASE_URL`, or one built from the parts.
    pub fn url(&self) -> String {
        if let Some(url) = &self.database_url {
            return url.clone();
        }
        let credentials = match &self.postgres_password {
            Some(password) => format!(
                "{}:{}",
                percent_encode(&self.postgres_user),
                percent_encode(password)
            ),
            None => percent_encode(&self.postgres_user),
        };
        format!(
            "postgres://{credentials}@{}:{}/{}",
            self.postgres_host,
            self.postgres_port,
            percent_encode(&self.postgres_db)
        )
    }

    /// The pool settings these arguments describe.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            url: self.url(),
            max_connections: self.database_max_connections.max(1),
            lock_timeout: Duration::from_millis(self.database_lock_timeout_ms),
            statement_timeout: Duration::from_millis(self.database_statement_timeout_ms),
            ..StoreConfig::default()
        }
    }
}

impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("url", &self.store_config())
            .finish_non_exhaustive()
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DatabaseArgs {
        DatabaseArgs {
            database_url: None,
            postgres_host: "db".into(),
            postgres_port: 5432,
            postgres_db: "bookmarkai".into(),
            postgres_user: "postgres".into(),
            postgres_password: Some("p@ss/word".into()),
            database_max_connections: 4,
            database_lock_timeout_ms: 100,
            database_statement_timeout_ms: 1000,
        }
    }

    #[test]
    fn url_is_built_from_parts_with_escaping() {
        assert_eq!(
            args().url(),
            "postgres://postgres:p%40ss%2Fword@db:5432/bookmarkai"
        );
    }

    #[test]
    fn database_url_wins() {
        let args = DatabaseArgs {
            database_url: Some("postgres://u@h/d".into()),
            ..args()
        };
        assert_eq!(args.url(), "postgres://u@h/d");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", args());
        assert!(!shown.contains("p%40ss"), "{shown}");
        assert!(!shown.contains("p@ss"), "{shown}");
    }
}
