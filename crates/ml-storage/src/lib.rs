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
//! | `results` | [`MlResult`] upserts into `ml_results`, failures that never overwrite a success, and the [`processed_at`] stamp |
//! | `embeddings` | atomic replacement of one [`EmbeddingSet`]'s vectors, plus search helpers |
//!
//! Every write is idempotent: a redelivered task leaves the same rows, so the
//! consumer can ack late and let the broker redeliver anything unfinished.
//!
//! The crate knows nothing of the broker or the worker runtime: connecting
//! with backoff, the `/readyz` check and mapping [`StorageError`] to a task's
//! fate live in `ml-runtime` (its `storage` module).

pub mod args;
pub mod config;
mod embeddings;
pub mod error;
mod migrate;
mod results;
pub mod store;

pub use args::DatabaseArgs;
pub use config::StoreConfig;
pub use embeddings::{EmbeddingRow, EmbeddingSet};
pub use error::{Result, StorageError};
pub use results::{Failure, MlResult, StoredResult, processed_at};
pub use store::Store;
