//! Test support shared by the workers' integration tests and benchmarks.
//!
//! Everything talks to the real services named by the environment that
//! `scripts/test` exports (`CELERY_BROKER_URL`, `DATABASE_URL`, `REDIS_URL`,
//! `MODELS_DIR`, `ML_WORKERS_PYTHON`), with local defaults.
//!
//! | module | what |
//! |---|---|
//! | [`env`] | service addresses and paths |
//! | [`cli`] | a worker's `--help` |
//! | [`fixture`] | the example messages in `tests/fixtures/messages` |
//! | [`broker`] | publishing, reading and cleaning test queues |
//! | [`celery`] | the Celery results in Redis: reading, clearing, waiting, drain rates |
//! | [`results`] | the `ml_results` rows in PostgreSQL |
//! | [`s3`] | a real S3-compatible server (moto) for media tests |
//! | [`speech`] | real speech (the JFK sample, espeak-ng, ffmpeg), WAV reading, transcript normalisation |
//! | [`harness`] | a ready worker on a fresh queue, with broker and database handles |
//! | [`process`] | a worker binary run as a child process, its logs and endpoints |
//! | [`wait`] | polling until a condition holds, with a deadline |

pub mod broker;
pub mod celery;
pub mod cli;
pub mod env;
pub mod fixture;
pub mod harness;
pub mod process;
pub mod results;
pub mod s3;
pub mod speech;
pub mod wait;

pub use broker::TestBroker;
pub use fixture::Fixture;
pub use harness::{Harness, WorkerKind};
pub use process::WorkerProcess;
