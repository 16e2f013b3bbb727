//! A real S3-compatible server for tests: moto in server mode, from
//! set-up's venv (`$ML_WORKERS_CACHE/venv-s3`), on a free loopback port.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};
use url::Url;

use crate::env::cache_dir;

/// The access key id the server accepts (moto accepts any).
pub const KEY_ID: &str = "AKIDTESTMEDIA";
/// The secret key.
pub const SECRET: &str = "test-secret-key";
/// The region requests are signed for.
pub const REGION: &str = "us-east-1";

/// The running server; killed on drop.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>` (path-style addressing).
    pub endpoint: Url,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `moto_server` program (`ML_WORKERS_MOTO_SERVER` overrides).
fn program() -> PathBuf {
    std::env::var_os("ML_WORKERS_MOTO_SERVER").map_or_else(
        || cache_dir().join("venv-s3/bin/moto_server"),
        PathBuf::from,
    )
}

impl S3Server {
    /// Starts the server and waits until it listens.
    ///
    /// # Errors
    /// When moto is not installed or does not start within 60 s.
    pub fn start() -> Result<Self> {
        let program = program();
        ensure!(
            program.is_file(),
            "{} is missing: run scripts/setup (step venv-s3)",
            program.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut server = Self {
            child,
            endpoint: Url::parse(&format!("http://127.0.0.1:{port}"))?,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("moto_server exited at start-up: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "moto_server did not listen on {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// Creates `bucket` (if needed) and uploads `body` as `key`, with
    /// plain signed requests.
    ///
    /// # Errors
    /// When the server refuses either request.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
        let credentials = Credentials::new(KEY_ID, SECRET);
        let bucket = Bucket::new(
            self.endpoint.clone(),
            UrlStyle::Path,
            bucket.to_owned(),
            REGION,
        )?;
        let client = reqwest::Client::new();
        let ttl = Duration::from_secs(300);
        let created = client
            .put(bucket.create_bucket(&credentials).sign(ttl))
            // An explicit empty body: S3 servers want a Content-Length.
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await?;
        ensure!(
            created.status().is_success() || created.status().as_u16() == 409,
            "create bucket: {}",
            created.status()
        );
        let put = client
            .put(bucket.put_object(Some(&credentials), key).sign(ttl))
            .body(body)
            .send()
            .await?;
        ensure!(put.status().is_success(), "put object: {}", put.status());
        Ok(())
    }
}
