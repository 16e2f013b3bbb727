//! Which addresses an HTTP(S) fetch may connect to.
//!
//! A media URL comes from a message, so without a policy it could make the
//! worker read cloud metadata (169.254.169.254), an internal admin page or a
//! database port. [`AddressPolicy`] refuses every address that is not public
//! unicast, unless the operator allow-listed it (`MEDIA_ALLOW_ADDRESSES`).
//! It is applied to the addresses actually connected to: resolved names go
//! through [`crate::resolver`], literal IPs are checked before connecting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::MediaError;

/// Refuses non-public addresses unless allow-listed.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressPolicy {
    allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy allowing, besides public addresses, those inside `allow`.
    pub(crate) fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// `Ok` when `addr` may be connected to.
    ///
    /// # Errors
    ///
    /// [`MediaError::AddressRefused`] naming `host`, the address and its class.
    pub(crate) fn check(&self, host: &str, addr: IpAddr) -> Result<(), MediaError> {
        let Some(class) = classify(addr) else {
            return Ok(());
        };
        let canonical = addr.to_canonical();
        if self
            .allow
            .iter()
            .any(|net| net.contains(&addr) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(MediaError::AddressRefused {
            host: host.to_owned(),
            addr,
            class,
        })
    }
}

/// The class of a non-public address, `None` for public unicast.
pub(crate) fn classify(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(addr: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(addr) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(addr: Ipv4Addr) -> Option<&'static str> {
    const CLASSES: &[([u8; 4], u32, &str)] = &[
        // Most specific first: the metadata address sits inside link-local.
        ([169, 254, 169, 254], 32, "link-local/metadata"),
        ([0, 0, 0, 0], 32, "unspecified"),
        ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([10, 0, 0, 0], 8, "private (RFC 1918)"),
        ([172, 16, 0, 0], 12, "private (RFC 1918)"),
        ([192, 168, 0, 0], 16, "private (RFC 1918)"),
        (
            [100, 64, 0, 0],
            10,
            "shared address space/CGNAT (100.64.0.0/10)",
        ),
        ([169, 254, 0, 0], 16, "link-local"),
        (
            [192, 0, 0, 0],
            24,
            "IETF protocol assignments (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "documentation (TEST-NET-1)"),
        ([198, 51, 100, 0], 24, "documentation (TEST-NET-2)"),
        ([203, 0, 113, 0], 24, "documentation (TEST-NET-3)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    CLASSES
        .iter()
        .find(|(net, prefix, _)| in_v4(addr, *net, *prefix))
        .map(|(_, _, class)| *class)
}

fn in_v6(addr: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(addr) & mask == u128::from(net) & mask
}

/// The IPv4 address carried inside an IPv6 one by a translation scheme
/// (mapped, compatible, NAT64, 6to4), which is where packets really go.
fn embedded_v4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(addr);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let s = addr.segments();
    if let Some(v4) = addr.to_ipv4_mapped() {
        Some(v4)
    } else if bits >> 32 == 0 && bits > 1 {
        // IPv4-compatible (::a.b.c.d, deprecated); `::` and `::1` are not.
        Some(low32)
    } else if in_v6(addr, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        Some(low32)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            (s[1] & 0xff) as u8,
            (s[2] >> 8) as u8,
            (s[2] & 0xff) as u8,
        ))
    } else {
        None
    }
}

fn classify_v6(addr: Ipv6Addr) -> Option<&'static str> {
    const CLASSES: &[(Ipv6Addr, u32, &str)] = &[
        (
            Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
            128,
            "link-local/metadata",
        ),
        (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
        (Ipv6Addr::LOCALHOST, 128, "loopback"),
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            "NAT64 local-use (64:ff9b:1::/48)",
        ),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            "discard-only (100::/64)",
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            "documentation (2001:db8::/32)",
        ),
        (
            Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0),
            48,
            "benchmarking (2001:2::/48)",
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            "private (unique local, fc00::/7)",
        ),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
        (
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            10,
            "site-local (deprecated, fec0::/10)",
        ),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
    ];
    if let Some((_, _, class)) = CLASSES
        .iter()
        .find(|(net, prefix, _)| in_v6(addr, *net, *prefix))
    {
        return Some(class);
    }
    embedded_v4(addr).and_then(classify_v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Option<&'static str> {
        match text.parse::<IpAddr>() {
            Ok(addr) => classify(addr),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn refused_ranges() {
        for (addr, want) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private (RFC 1918)"),
            ("172.31.255.255", "private (RFC 1918)"),
            ("192.168.1.1", "private (RFC 1918)"),
            ("100.64.0.1", "shared address space/CGNAT (100.64.0.0/10)"),
            (
                "100.127.255.254",
                "shared address space/CGNAT (100.64.0.0/10)",
            ),
            ("169.254.169.254", "link-local/metadata"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("192.0.2.7", "documentation (TEST-NET-1)"),
            ("203.0.113.9", "documentation (TEST-NET-3)"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "link-local/metadata"),
            ("fd12:3456::1", "private (unique local, fc00::/7)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation (2001:db8::/32)"),
            // IPv4 hidden in IPv6 is judged by the IPv4 address.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local/metadata"),
            ("64:ff9b::10.0.0.1", "private (RFC 1918)"),
            ("2002:a9fe:a9fe::1", "link-local/metadata"),
        ] {
            assert_eq!(class(addr), Some(want), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert_eq!(class(addr), None, "{addr}");
        }
    }

    #[test]
    fn allow_list_overrides_by_address_or_cidr() {
        let policy = AddressPolicy::new(vec![
            IpNet::from(IpAddr::from([127, 0, 0, 1])),
            match "10.1.0.0/16".parse::<IpNet>() {
                Ok(net) => net,
                Err(e) => panic!("{e}"),
            },
        ]);
        let ip = |a: [u8; 4]| IpAddr::from(a);
        assert!(policy.check("h", ip([127, 0, 0, 1])).is_ok());
        assert!(
            policy
                .check("h", "::ffff:127.0.0.1".parse().unwrap_or(ip([0; 4])))
                .is_ok()
        );
        assert!(policy.check("h", ip([10, 1, 2, 3])).is_ok());
        let err = policy.check("h", ip([10, 2, 0, 1])).err();
        assert!(
            matches!(err, Some(MediaError::AddressRefused { .. })),
            "{err:?}"
        );
        let err = policy.check("meta", ip([169, 254, 169, 254])).err();
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "address 169.254.169.254 (of meta) is link-local/metadata: refused \
             (allow it with MEDIA_ALLOW_ADDRESSES)"
        );
    }
}
