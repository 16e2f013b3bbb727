//! A reqwest DNS resolver that drops the addresses [`AddressPolicy`] refuses,
//! so the check applies to the very addresses the connection is made to
//! (no gap between checking a name and connecting, as with DNS rebinding).

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::MediaError;
use crate::policy::AddressPolicy;

/// Why the resolver gave no address; travels inside reqwest's error chain
/// and is turned back into a [`MediaError`] by the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ResolveFailure {
    /// Every address of the name is refused by the policy.
    #[error("address {addr} of {host} is {class}: refused")]
    Refused {
        host: String,
        addr: std::net::IpAddr,
        class: &'static str,
    },
    /// The name does not resolve.
    #[error("could not resolve {host}: {reason}")]
    Unresolved { host: String, reason: String },
}

impl From<ResolveFailure> for MediaError {
    fn from(failure: ResolveFailure) -> Self {
        match failure {
            ResolveFailure::Refused { host, addr, class } => {
                MediaError::AddressRefused { host, addr, class }
            }
            ResolveFailure::Unresolved { host, reason } => MediaError::Resolve { host, reason },
        }
    }
}

/// Resolves with the system resolver, then keeps only allowed addresses.
#[derive(Debug)]
pub(crate) struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl PolicyResolver {
    pub(crate) fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveFailure::Unresolved {
                    host: host.clone(),
                    reason: e.to_string(),
                })?;
            let (allowed, refused) = filter(&policy, &host, resolved);
            if allowed.is_empty() {
                let failure = refused.unwrap_or_else(|| ResolveFailure::Unresolved {
                    host: host.clone(),
                    reason: "no addresses".to_owned(),
                });
                tracing::warn!(%failure, "media host refused");
                return Err(failure.into());
            }
            tracing::debug!(host, addresses = ?allowed, "media host resolved");
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Splits resolved addresses into the allowed ones and the first refusal.
fn filter(
    policy: &AddressPolicy,
    host: &str,
    resolved: impl Iterator<Item = SocketAddr>,
) -> (Vec<SocketAddr>, Option<ResolveFailure>) {
    let mut allowed = Vec::new();
    let mut refused = None;
    for addr in resolved {
        match policy.check(host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(MediaError::AddressRefused { host, addr, class }) => {
                refused.get_or_insert(ResolveFailure::Refused { host, addr, class });
            }
            Err(_) => {}
        }
    }
    (allowed, refused)
}

/// The [`ResolveFailure`] somewhere in an error's source chain.
pub(crate) fn find_failure(error: &(dyn std::error::Error + 'static)) -> Option<ResolveFailure> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(failure) = e.downcast_ref::<ResolveFailure>() {
            return Some(failure.clone());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_answers_keep_only_public_addresses() {
        let policy = AddressPolicy::default();
        let resolved = [
            SocketAddr::from(([10, 0, 0, 1], 0)),
            SocketAddr::from(([93, 184, 215, 14], 0)),
        ];
        let (allowed, refused) = filter(&policy, "h", resolved.into_iter());
        assert_eq!(allowed, [SocketAddr::from(([93, 184, 215, 14], 0))]);
        assert!(matches!(refused, Some(ResolveFailure::Refused { .. })));
    }

    #[tokio::test]
    async fn localhost_is_refused_unless_allowed() {
        let name: Name = match "localhost".parse() {
            Ok(name) => name,
            Err(_) => panic!("name"),
        };
        let refused = PolicyResolver::new(Arc::default()).resolve(name).await;
        let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("loopback: refused"), "{err}");

        let allow = ["127.0.0.0/8", "::1/128"]
            .map(|net| match net.parse() {
                Ok(net) => net,
                Err(e) => panic!("{net}: {e}"),
            })
            .to_vec();
        let name: Name = match "localhost".parse() {
            Ok(name) => name,
            Err(_) => panic!("name"),
        };
        let allowed = PolicyResolver::new(Arc::new(AddressPolicy::new(allow)))
            .resolve(name)
            .await;
        assert!(allowed.map(|mut a| a.next().is_some()).unwrap_or(false));
    }
}
