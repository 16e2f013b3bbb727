//! A worker binary run as a child process: its JSON logs, its HTTP
//! endpoints, and the signals tests send it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::env;
use crate::wait;

/// A running worker. Killed when dropped.
pub struct WorkerProcess {
    child: Child,
    logs: Arc<Mutex<Vec<Value>>>,
    address: Option<String>,
}

impl WorkerProcess {
    /// Starts `binary` consuming `queue` against the test services, with the
    /// metrics server on a free loopback port and `extra_env` on top.
    ///
    /// # Errors
    /// When the binary cannot be started.
    pub fn spawn(binary: &Path, queue: &str, extra_env: &[(&str, &str)]) -> Result<Self> {
        let mut command = Command::new(binary);
        command
            .env("CELERY_BROKER_URL", env::broker_url())
            .env("DATABASE_URL", env::database_url())
            .env("REDIS_URL", env::redis_url())
            .env("MODELS_DIR", env::models_dir())
            .env("EMBED_QUEUE", queue)
            .env("PROMETHEUS_METRICS_PORT", "0")
            .env("METRICS_HOST", "127.0.0.1")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .env_remove("CELERY_RESULT_BACKEND")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("worker stderr")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let pid = child.id();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[worker {pid}] {line}");
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if let Ok(mut logs) = sink.lock() {
                    logs.push(value);
                }
            }
        });
        Ok(Self {
            child,
            logs,
            address: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far (JSON objects; non-JSON lines as strings).
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits for a log line satisfying `matches` and returns it.
    ///
    /// # Errors
    /// When none appears within `timeout`.
    pub async fn wait_for_log(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        wait::until(what, timeout, || {
            let found = self.logs().into_iter().find(|line| matches(line));
            async move { found }
        })
        .await
    }

    /// Waits until `/readyz` answers 200 (the model is loaded, the broker
    /// channel open, the database reachable).
    ///
    /// # Errors
    /// When the worker exits or is not ready within `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let line = self
            .wait_for_log("the metrics server address", timeout, |line| {
                line.get("bound").is_some()
            })
            .await?;
        self.address = line["bound"].as_str().map(str::to_owned);
        wait::until("/readyz = 200", timeout, || {
            let ready = self
                .get("/readyz")
                .map(|(status, _)| status == 200)
                .unwrap_or(false);
            async move { ready.then_some(()) }
        })
        .await
    }

    /// `GET path` on the worker's metrics server: (status, body).
    ///
    /// # Errors
    /// When the address is unknown yet or the request fails.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        let address = self
            .address
            .as_deref()
            .context("metrics address not known yet")?;
        http_request(address, "GET", path, None, &[])
    }

    /// `POST path` with a JSON body on the worker's server: (status, body).
    ///
    /// # Errors
    /// When the address is unknown yet or the request fails.
    pub fn post_json(&self, path: &str, body: &str) -> Result<(u16, String)> {
        self.post_json_with(path, body, &[])
    }

    /// [`Self::post_json`] with extra request `headers` (name, value).
    ///
    /// # Errors
    /// When the address is unknown yet or the request fails.
    pub fn post_json_with(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String)> {
        let address = self
            .address
            .as_deref()
            .context("metrics address not known yet")?;
        http_request(address, "POST", path, Some(body), headers)
    }

    /// The worker's HTTP address (`host:port`), once [`Self::wait_ready`] ran.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// The value of a metric series on `/metrics` (sum over matching lines):
    /// `series` is the name with optional label filter, e.g.
    /// `celery_task_retried_total` or `ml_tasks_total{status="success"`.
    ///
    /// # Errors
    /// When `/metrics` cannot be read.
    pub fn metric(&self, series: &str) -> Result<f64> {
        let (_, body) = self.get("/metrics")?;
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        Ok(body
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| {
                line.split([' ', '{']).next() == Some(name)
                    && labels
                        .split(',')
                        .filter(|l| !l.is_empty())
                        .all(|label| line.contains(label.trim_end_matches('}')))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Sends SIGTERM.
    ///
    /// # Errors
    /// When `kill` cannot be run.
    pub fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        Ok(())
    }

    /// Sends SIGKILL (kill -9) and reaps the process.
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Waits for the process to exit.
    ///
    /// # Errors
    /// When it is still running after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = &mut self.child;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "worker still running after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Peak resident set size (`VmHWM`) in bytes of process `pid`, or of this
/// process when `None`.
///
/// # Errors
/// When `/proc` cannot be read (not Linux, or the process is gone).
pub fn peak_rss(pid: Option<u32>) -> Result<u64> {
    let path = pid.map_or_else(
        || "/proc/self/status".to_owned(),
        |pid| format!("/proc/{pid}/status"),
    );
    let status = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no VmHWM in {path}"))?;
    Ok(kib * 1024)
}

/// A minimal HTTP/1.0 request with an optional JSON body and extra headers (keeps the test
/// kit free of an HTTP client).
///
/// # Errors
/// When the connection fails or the answer is not HTTP.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {address}\r\n")?;
    for (name, value) in headers {
        write!(stream, "{name}: {value}\r\n")?;
    }
    if let Some(body) = json {
        write!(
            stream,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )?;
    }
    write!(stream, "\r\n{}", json.unwrap_or_default())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("not an HTTP response")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
