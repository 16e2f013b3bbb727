//! PostgreSQL + pgvector storage for the ML workers.
//!
//! The workers write two things (see CONTRACT.md section 5): one `ml_results`
//! row per `(share_id, task_type)`, shared with the API gateway, and, for the
//! embedding worker, the vectors in `embeddings`, which the gateway searches by
//! cosine distance through an HNSW index.
//!
//! # Module map
//!
//! | module | concept |
//! |---|---|
//! | [`error`] | [`StorageError`]: one error type, with [`StorageError::is_transient`] deciding retry or dead-letter |
//! | [`args`] | [`DatabaseArgs`]: `DATABASE_URL` / `POSTGRES_*` settings and CLI flags for the workers |
//! | [`config`] | [`StoreConfig`]: URL, pool size and the per-connection lock and statement timeouts |
//! | [`store`] | [`Store`]: the connection pool, connected eagerly, with [`Store::ping`] for readiness |
//! | `migrate` | embedded migrations for the static schema and the dimension-dependent `embeddings` table ([`Store::prepare`]) |
//! | [`runtime`] | plugging into ml-runtime: connect with backoff, `/readyz` check, errors as [`TaskError`](ml_runtime::TaskError), [`processed_at`] |
//! | `results` | [`MlResult`] upserts into `ml_results`, and failures that never overwrite a success |
//! | `embeddings` | atomic replacement of one [`EmbeddingSet`]'s vectors, plus search helpers |
//!
//! Every write is idempotent: a redelivered task leaves the same rows, so the
//! consumer can ack late and let the broker redeliver anything unfinished.

pub mod args;
pub mod config;
mod embeddings;
pub mod error;
mod migrate;
mod results;
pub mod runtime;
pub mod store;

pub use args::DatabaseArgs;
pub use config::StoreConfig;
pub use embeddings::{EmbeddingRow, EmbeddingSet};
pub use error::{Result, StorageError};
pub use results::{MlResult, StoredResult};
pub use runtime::processed_at;
pub use store::Store;
