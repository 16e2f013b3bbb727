//! A TCP relay in front of the real Redis that a test can cut, so the
//! result backend fails while the broker keeps working.

use anyhow::{Context as _, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Relays `127.0.0.1:<port>` to the Redis of `REDIS_URL` until cut.
pub struct RedisRelay {
    /// `REDIS_URL` with its address replaced by the relay's.
    pub url: String,
    address: std::net::SocketAddr,
    upstream: String,
    cut: std::sync::Mutex<CancellationToken>,
}

impl RedisRelay {
    /// Starts relaying on a free port.
    ///
    /// # Errors
    /// When `REDIS_URL` has no address or no port can be bound.
    pub async fn start() -> Result<Self> {
        let redis = ml_testkit::env::redis_url();
        let (scheme, rest) = redis
            .split_once("://")
            .context("REDIS_URL without a scheme")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (user, address) = match authority.rsplit_once('@') {
            Some((user, address)) => (format!("{user}@"), address),
            None => (String::new(), authority),
        };
        let upstream = if address.contains(':') {
            address.to_owned()
        } else {
            format!("{address}:6379")
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let url = format!("{scheme}://{user}{address}{path}");
        let cut = CancellationToken::new();
        tokio::spawn(accept(listener, upstream.clone(), cut.clone()));
        Ok(Self {
            url,
            address,
            upstream,
            cut: std::sync::Mutex::new(cut),
        })
    }

    /// Closes every relayed connection and refuses new ones (the listener
    /// is dropped), as if Redis went away.
    pub fn cut(&self) {
        self.token().cancel();
    }

    /// Relays again on the same address, as if Redis came back.
    ///
    /// # Errors
    /// When the address cannot be bound again.
    pub async fn restore(&self) -> Result<()> {
        let listener = TcpListener::bind(self.address).await?;
        let cut = CancellationToken::new();
        tokio::spawn(accept(listener, self.upstream.clone(), cut.clone()));
        *self
            .cut
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cut;
        Ok(())
    }

    fn token(&self) -> CancellationToken {
        self.cut
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Accepts until `cut`, relaying each connection to `upstream`.
async fn accept(listener: TcpListener, upstream: String, cut: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = cut.cancelled() => return,
        };
        let Ok((mut client, _)) = accepted else {
            return;
        };
        let upstream = upstream.clone();
        let cut = cut.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                () = cut.cancelled() => {}
            }
        });
    }
}
