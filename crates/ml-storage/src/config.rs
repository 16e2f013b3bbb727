//! Connection settings for [`Store`](crate::Store).

use std::fmt;
use std::time::Duration;

/// How to reach PostgreSQL and how long to wait for it.
///
/// The binaries fill this from their own configuration (`DATABASE_URL` or the
/// `POSTGRES_*` variables, see CONTRACT.md section 6). `Debug` never shows the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database?options`.
    pub url: String,
    /// Upper bound on pooled connections; size it to the worker's concurrency.
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection (and for the first
    /// connection in [`Store::connect`](crate::Store::connect)) before a
    /// transient error.
    pub acquire_timeout: Duration,
    /// `SET lock_timeout` on every connection: a statement waiting longer
    /// than this for a row, table or advisory lock fails with SQLSTATE 55P03,
    /// which is transient, so the task is retried instead of hanging.
    /// Zero disables the limit.
    pub lock_timeout: Duration,
    /// `SET statement_timeout` on every connection (SQLSTATE 57014 when hit,
    /// transient). Zero disables the limit.
    pub statement_timeout: Duration,
}

impl StoreConfig {
    /// Default pool size.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    /// Default wait for a pooled connection.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `lock_timeout`.
    pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `statement_timeout`.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

    /// A configuration for `url` with the default pool size and timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            lock_timeout: Self::DEFAULT_LOCK_TIMEOUT,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
        }
    }

    /// The URL with any password replaced by `***`, safe to log.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl Default for StoreConfig {
    /// The local development database with the default pool and timeouts.
    fn default() -> Self {
        Self::new("postgres://postgres@127.0.0.1:5432/ml_workers")
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// Hides the password in the user-info part and in `password=` /
/// `sslpassword=` query parameters.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);

    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }

    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _))
                        if key.eq_ignore_ascii_case("password")
                            || key.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{key}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let config = StoreConfig::new("postgres://worker:s3cr%40t@db.internal:5432/bookmarkai");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(
            shown.contains("postgres://worker:***@db.internal:5432/bookmarkai"),
            "{shown}"
        );
    }

    #[test]
    fn query_passwords_are_hidden_too() {
        let url = "postgresql://db/x?user=a&password=hunter2&sslmode=disable";
        assert_eq!(
            redact_url(url),
            "postgresql://db/x?user=a&password=***&sslmode=disable"
        );
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/ml_workers_test",
            "postgres://localhost/db",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn an_at_sign_in_the_password_does_not_leak_it() {
        let shown = redact_url("postgres://u:p@ss@host/db");
        assert!(!shown.contains("p@ss"), "{shown}");
    }
}
