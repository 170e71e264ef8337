//! Where a webhook may post: `http`/`https` URLs whose host resolves to public addresses only
//! (unless `--webhook-allow-private`), checked at creation and again at each delivery, and the one
//! address that was checked, which the delivery then connects to (no second lookup).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::domain::DomainError;

/// How long a host name may take to resolve.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A target that may be posted to: the URL, and the address its host resolved to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    /// The host's name when it is one (the connection is pinned to `address` for it).
    pub domain: Option<String>,
    pub address: SocketAddr,
}

/// Parses `text` and resolves its host; refuses a URL that is not `http(s)`, and, unless
/// `allow_private`, one whose host resolves to any address that is not public.
pub async fn check_target(text: &str, allow_private: bool) -> Result<Target, DomainError> {
    let url = Url::parse(text).map_err(|error| DomainError::InvalidUrl(format!("{text}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DomainError::InvalidUrl(format!("{text}: only http and https URLs are posted to")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::InvalidUrl(format!("{text}: credentials do not belong in a webhook URL")));
    }
    let port = url.port_or_known_default().ok_or_else(|| DomainError::InvalidUrl(format!("{text}: no port")))?;
    let (domain, addresses) = match url.host() {
        Some(Host::Ipv4(ip)) => (None, vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        Some(Host::Ipv6(ip)) => (None, vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        Some(Host::Domain(name)) => {
            let unresolved = |why: String| DomainError::WebhookTargetRefused(format!("{name} does not resolve: {why}"));
            let resolved = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| unresolved(format!("no answer within {} s", LOOKUP_TIMEOUT.as_secs())))?
                .map_err(|error| unresolved(error.to_string()))?;
            (Some(name.to_string()), resolved.collect())
        }
        None => return Err(DomainError::InvalidUrl(format!("{text}: no host"))),
    };
    if !allow_private {
        if let Some((address, why)) = addresses.iter().find_map(|a| refusal(a.ip()).map(|why| (a.ip(), why))) {
            return Err(DomainError::WebhookTargetRefused(format!("{text} resolves to {address}, {why}")));
        }
    }
    let address = *addresses
        .first()
        .ok_or_else(|| DomainError::WebhookTargetRefused(format!("{text}: its host resolves to no address")))?;
    Ok(Target { url, domain, address })
}

/// Why an address is no webhook target, if it is not a public one.
fn refusal(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(ip) => refusal_v4(ip),
        IpAddr::V6(ip) => refusal_v6(ip),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address (RFC 1918)")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address (100.64.0.0/10)")
    } else if a == 0 {
        Some("an unspecified address (0.0.0.0/8)")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("a broadcast or multicast address")
    } else {
        None
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address (::)")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local address (fc00::/7)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if let Some(v4) = ip.to_ipv4() {
        // IPv4-mapped (::ffff:a.b.c.d) and the old IPv4-compatible (::a.b.c.d) forms reach the
        // IPv4 address they carry.
        refusal_v4(v4)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_cgnat_unspecified_metadata_and_mapped_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
        ] {
            assert!(refusal(refused.parse().unwrap()).is_some(), "{refused} should be refused");
        }
        for allowed in ["8.8.8.8", "100.63.255.255", "100.128.0.1", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert_eq!(refusal(allowed.parse().unwrap()), None, "{allowed} should be allowed");
        }
    }

    #[tokio::test]
    async fn urls_are_parsed_and_their_hosts_checked() {
        let refused = |text: &'static str| async move { check_target(text, false).await.unwrap_err().code() };
        assert_eq!(refused("ftp://example.org/").await, "invalid_url");
        assert_eq!(refused("not a url").await, "invalid_url");
        assert_eq!(refused("http://user:pw@8.8.8.8/").await, "invalid_url");
        assert_eq!(refused("http://127.0.0.1:9000/hook").await, "webhook_target_refused");
        assert_eq!(refused("http://[::ffff:7f00:1]/").await, "webhook_target_refused");
        // The WHATWG parser reads other spellings of an IPv4 address as that address.
        assert_eq!(refused("http://0x7f.1/").await, "webhook_target_refused");
        assert_eq!(refused("http://localhost:9000/").await, "webhook_target_refused");
        let target = check_target("https://8.8.8.8/hook", false).await.unwrap();
        assert_eq!(target.address, "8.8.8.8:443".parse().unwrap());
        let allowed = check_target("http://127.0.0.1:9000/hook", true).await.unwrap();
        assert_eq!(allowed.address, "127.0.0.1:9000".parse().unwrap());
    }
}
