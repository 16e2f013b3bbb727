//! The storage error type and its retry-or-dead-letter decision.

use sqlx::migrate::MigrateError;

/// Result alias for this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything that can go wrong talking to PostgreSQL.
///
/// Callers decide what to do with a failed task through
/// [`is_transient`](StorageError::is_transient): transient errors are
/// retried with backoff, everything else is permanent and goes to the
/// dead-letter queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The configuration cannot work (for example, the URL does not parse).
    #[error("invalid storage configuration: {reason}")]
    InvalidConfig {
        /// What is wrong, without secrets.
        reason: String,
    },

    /// The first connection to the database could not be opened.
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        /// Host, port and database, without credentials.
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A statement failed.
    #[error("database error while {operation}: {source}")]
    Database {
        /// What the crate was doing, for the log line.
        operation: &'static str,
        /// The driver's error, carrying the SQLSTATE when the server sent one.
        #[source]
        source: sqlx::Error,
    },

    /// Applying the embedded schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migrate(#[source] MigrateError),

    /// `embeddings.embedding` was created for another model's dimension.
    #[error(
        "the embeddings table stores vector({table_dimension}) but the configured model \
         produces {model_dimension} dimensions; configure the model that matches the table, \
         or drop the embeddings table (DROP TABLE embeddings) so it is re-created as \
         vector({model_dimension}) and re-embed the existing shares"
    )]
    DimensionMismatch {
        /// Dimension declared by the existing column.
        table_dimension: usize,
        /// Dimension the configured model produces.
        model_dimension: usize,
    },

    /// An existing table cannot hold what this crate writes.
    #[error("incompatible database schema: {reason}")]
    SchemaMismatch {
        /// What is missing or different, and what to do about it.
        reason: String,
    },

    /// A vector handed to the store has the wrong length.
    #[error(
        "embedding {index} has {actual} dimensions but the embeddings table stores vector({expected})"
    )]
    VectorLength {
        /// Position of the offending row in the batch.
        index: usize,
        /// Its length.
        actual: usize,
        /// The table's dimension.
        expected: usize,
    },

    /// The caller passed data the store refuses (never worth a retry).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },
}

impl StorageError {
    /// Whether retrying the same operation later may succeed.
    ///
    /// Transient: the database is unreachable or restarting, the pool timed
    /// out, the server gave up on a lock, deadlock or serialisation conflict,
    /// the statement was cancelled, or the server is out of connections or
    /// resources. Permanent: constraint violations, bad data, schema or
    /// dimension mismatches, invalid input and configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { source, .. } | Self::Database { source, .. } => {
                sqlx_is_transient(source)
            }
            Self::Migrate(error) => migrate_is_transient(error),
            Self::InvalidConfig { .. }
            | Self::DimensionMismatch { .. }
            | Self::SchemaMismatch { .. }
            | Self::VectorLength { .. }
            | Self::InvalidInput { .. } => false,
        }
    }

    /// The SQLSTATE code the server returned, if this came from the server.
    pub fn sqlstate(&self) -> Option<String> {
        let source = match self {
            Self::Connect { source, .. } | Self::Database { source, .. } => source,
            Self::Migrate(
                MigrateError::Execute(source) | MigrateError::ExecuteMigration(source, _),
            ) => source,
            _ => return None,
        };
        match source {
            sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
            _ => None,
        }
    }

    /// Wraps a driver error with what the crate was doing.
    pub(crate) fn database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { operation, source }
    }
}

fn migrate_is_transient(error: &MigrateError) -> bool {
    match error {
        MigrateError::Execute(source) | MigrateError::ExecuteMigration(source, _) => {
            sqlx_is_transient(source)
        }
        _ => false,
    }
}

/// Classifies a driver error.
fn sqlx_is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| sqlstate_is_transient(&code)),
        sqlx::Error::Migrate(error) => migrate_is_transient(error),
        _ => false,
    }
}

/// Whether a SQLSTATE names a condition that goes away by itself.
fn sqlstate_is_transient(code: &str) -> bool {
    // Whole classes: 08 connection exception, 40 transaction rollback
    // (serialization_failure 40001, deadlock_detected 40P01, ...),
    // 53 insufficient resources (too_many_connections 53300, disk_full, ...).
    let class = code.get(..2).unwrap_or_default();
    matches!(class, "08" | "40" | "53")
        || matches!(
            code,
            // lock_not_available (lock_timeout, NOWAIT)
            "55P03"
            // query_canceled (statement_timeout, pg_cancel_backend)
            | "57014"
            // admin_shutdown, crash_shutdown, cannot_connect_now
            | "57P01" | "57P02" | "57P03"
            // io_error
            | "58030"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        for code in [
            "40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300", "08006",
            "08001",
        ] {
            assert!(sqlstate_is_transient(code), "{code} should be transient");
        }
        for code in [
            "23505", "23503", "23502", "22P02", "22001", "42P01", "42703", "28P01",
        ] {
            assert!(!sqlstate_is_transient(code), "{code} should be permanent");
        }
    }

    #[test]
    fn driver_errors_are_classified() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(sqlx_is_transient(&io));
        assert!(sqlx_is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!sqlx_is_transient(&sqlx::Error::RowNotFound));
        assert!(!sqlx_is_transient(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn input_errors_are_permanent() {
        let error = StorageError::DimensionMismatch {
            table_dimension: 1536,
            model_dimension: 384,
        };
        assert!(!error.is_transient());
        let message = error.to_string();
        assert!(message.contains("vector(1536)"), "{message}");
        assert!(message.contains("DROP TABLE embeddings"), "{message}");
        assert!(
            !StorageError::VectorLength {
                index: 0,
                actual: 3,
                expected: 384
            }
            .is_transient()
        );
    }

    #[test]
    fn wrapped_errors_keep_their_class() {
        let error = StorageError::database("testing")(sqlx::Error::PoolTimedOut);
        assert!(error.is_transient());
        let error = StorageError::Migrate(MigrateError::VersionMismatch(1));
        assert!(!error.is_transient());
        let error = StorageError::Migrate(MigrateError::Execute(sqlx::Error::PoolTimedOut));
        assert!(error.is_transient());
    }
}
