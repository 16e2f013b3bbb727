//! HTTP(S) media: every address checked against the policy, redirects
//! followed by hand (each hop checked again), then streamed to a temp file.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::header::LOCATION;
use tempfile::TempPath;
use url::{Host, Url};

use crate::download::{Sink, suffix_of};
use crate::error::MediaError;
use crate::policy::AddressPolicy;
use crate::resolver::PolicyResolver;
use crate::source::redact;

/// Fetches `http(s)://` media for arbitrary (untrusted) URLs.
#[derive(Debug)]
pub(crate) struct HttpFetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    max_redirects: usize,
    sink: Sink,
}

impl HttpFetcher {
    pub(crate) fn new(
        policy: AddressPolicy,
        max_redirects: usize,
        sink: Sink,
    ) -> Result<Self, MediaError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver::new(Arc::clone(&policy))))
            // Redirects are followed by hand, so each hop is checked.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on our behalf, past the address check.
            .no_proxy()
            .connect_timeout(sink.connect_timeout)
            .read_timeout(sink.read_timeout)
            .user_agent(concat!("ml-workers/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MediaError::Config(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            client,
            policy,
            max_redirects,
            sink,
        })
    }

    /// Downloads `url` into a temp file.
    pub(crate) async fn fetch(&self, url: &Url) -> Result<(TempPath, u64), MediaError> {
        let (response, final_url) = self.get_following_redirects(url).await?;
        let shown = redact(final_url.as_str());
        let status = response.status();
        if !status.is_success() {
            return Err(MediaError::HttpStatus {
                url: shown,
                status: status.as_u16(),
            });
        }
        self.sink
            .save(response, &shown, &suffix_of(final_url.path()))
            .await
    }

    /// GETs `url`, following at most `max_redirects` redirects, and returns
    /// the first non-redirect response with its URL.
    async fn get_following_redirects(
        &self,
        url: &Url,
    ) -> Result<(reqwest::Response, Url), MediaError> {
        let mut current = url.clone();
        let mut seen = HashSet::new();
        let mut redirects = 0;
        loop {
            self.check_literal_host(&current)?;
            seen.insert(current.clone());
            let shown = redact(current.as_str());
            let response = self
                .client
                .get(current.clone())
                .send()
                .await
                .map_err(|e| self.sink.transfer_error(e, &shown))?;
            let Some(location) = redirect_target(&response) else {
                return Ok((response, current));
            };
            let next = next_hop(&current, location, &shown)?;
            if seen.contains(&next) {
                return Err(MediaError::BadRedirect {
                    from: shown,
                    reason: format!("redirect loop back to {}", redact(next.as_str())),
                });
            }
            redirects += 1;
            if redirects > self.max_redirects {
                return Err(MediaError::TooManyRedirects {
                    url: redact(url.as_str()),
                    limit: self.max_redirects,
                });
            }
            tracing::debug!(from = shown, to = %redact(next.as_str()), redirects, "following redirect");
            current = next;
        }
    }

    /// The resolver never sees IP literals, so they are checked here.
    fn check_literal_host(&self, url: &Url) -> Result<(), MediaError> {
        let addr = match url.host() {
            Some(Host::Ipv4(v4)) => v4.into(),
            Some(Host::Ipv6(v6)) => v6.into(),
            Some(Host::Domain(_)) => return Ok(()),
            None => {
                return Err(MediaError::InvalidSource {
                    url: redact(url.as_str()),
                    reason: "no host".to_owned(),
                });
            }
        };
        self.policy.check(url.host_str().unwrap_or_default(), addr)
    }
}

/// The `Location` of a redirect response (301, 302, 303, 307, 308).
fn redirect_target(response: &reqwest::Response) -> Option<&reqwest::header::HeaderValue> {
    matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308)
        .then(|| response.headers().get(LOCATION))
        .flatten()
}

/// Resolves a `Location` against the current URL; only http(s) may follow.
fn next_hop(
    current: &Url,
    location: &reqwest::header::HeaderValue,
    shown: &str,
) -> Result<Url, MediaError> {
    let bad = |reason: String| MediaError::BadRedirect {
        from: shown.to_owned(),
        reason,
    };
    let text = location
        .to_str()
        .map_err(|_| bad("Location header is not valid text".to_owned()))?;
    let next = current.join(text).map_err(|e| {
        bad(format!(
            "Location {:?} is not a valid URL: {e}",
            redact(text)
        ))
    })?;
    match next.scheme() {
        "http" | "https" => Ok(next),
        scheme => Err(bad(format!(
            "target scheme {scheme}:// is not accepted (only http and https)"
        ))),
    }
}
