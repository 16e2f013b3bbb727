//! The consumer runtime every ML worker stands on.
//!
//! A worker implements [`app::WorkerApp`] (settings, model, handlers) and its
//! `main` calls [`app::main`]; the runtime does everything around the model:
//!
//! | module | concern |
//! |---|---|
//! | [`app`] | the worker skeleton: one start-up and shutdown order |
//! | [`config`] | environment names and CLI flags shared by every worker |
//! | [`cpu`] | the model library's compute threads against the CPU limit |
//! | [`task`] | the typed [`Task`] both wire encodings decode into |
//! | [`arguments`] | typed task arguments ([`Request`]): serde, both spellings, errors naming the field |
//! | `decode` | gateway (body-carried) and Celery protocol 2 decoding |
//! | [`headers`] | AMQP field tables to and from JSON |
//! | [`handler`] | the [`Handler`] trait and the task-name [`Router`] |
//! | [`error`] | [`TaskError`] (retry or dead-letter) and [`RuntimeError`] |
//! | [`broker`] | connecting with backoff, declaring the contract's topology |
//! | `publisher` | confirmed publishing of retries and dead-letters |
//! | `worker` | the consume loop: prefetch, reconnects, graceful drain |
//! | `process` | one delivery's life: eta/expires, run, retry, dead-letter, late ack |
//! | [`backoff`] | exponential backoff with jitter; retrying start-up connections |
//! | [`storage`] | PostgreSQL at start-up (backoff), in `/readyz`, its errors as [`TaskError`]s, failure rows |
//! | [`results`] | the Celery result backend in Redis |
//! | [`metrics`] | the Prometheus registry with the contract's metric names |
//! | [`health`] | the axum server for `/metrics`, `/healthz`, `/readyz` |
//! | `connections` | accepting that server's connections: how many at once, a deadline for request headers |
//! | [`shutdown`] | one token fired by SIGTERM or Ctrl-C |
//! | [`stop`] | the running task's soft-time-limit token, for handlers that can end early |
//! | [`telemetry`] | JSON logging set-up; OTLP export of task spans when configured |

pub mod app;
pub mod arguments;
pub mod backoff;
pub mod broker;
pub mod config;
pub mod cpu;
pub mod error;
pub mod handler;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod results;
pub mod shutdown;
pub mod stop;
pub mod storage;
pub mod task;
pub mod telemetry;

mod connections;
mod decode;

mod process;
mod publisher;
mod worker;

pub use arguments::{Arguments, Request, ShareId};
pub use config::RuntimeArgs;
pub use error::{RuntimeError, TaskError};
pub use handler::{Handler, Router};
pub use health::{Readiness, ReadinessCheck};
pub use metrics::Metrics;
pub use results::ResultBackend;
pub use task::{Encoding, Task};
pub use worker::{Worker, WorkerSpec};

/// The exchange every ML queue is bound to (CONTRACT section 1).
pub const EXCHANGE: &str = "bookmarkai.ml";

/// Suffix of the dead-letter queue each source queue gets.
pub const DEAD_LETTER_SUFFIX: &str = ".dead";
