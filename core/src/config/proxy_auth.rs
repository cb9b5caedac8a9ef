//! `web.auth.proxy` and `web.auth.anonymous`: users authenticated by a reverse proxy in
//! front of Sightline (oauth2-proxy, Authelia, Pomerium), as Grafana's `auth.proxy`, and
//! read-only access without credentials, as Grafana's `auth.anonymous` with the Viewer role
//! — the way the seed clusters run Grafana behind oauth2-proxy.
//!
//! Decisions: the user headers count only on requests whose peer address is one of
//! `trusted_proxies`; from anywhere else they are ignored as if absent, so that a client
//! that reaches Sightline directly cannot claim to be anyone. Users are viewers unless
//! listed in `admins` (or `default_role` says otherwise).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::sections::Role;
use crate::yaml::Check;

/// Users named by a trusted reverse proxy's headers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuthConfig {
    /// Addresses (`10.0.0.7`) or networks (`10.42.0.0/16`) of the proxies whose headers are
    /// believed.
    pub trusted_proxies: Vec<AddressRange>,
    /// Headers naming the user, tried in order: oauth2-proxy's `X-Auth-Request-User` and
    /// `X-Auth-Request-Email` (with `--set-xauthrequest`), and `X-Forwarded-User`.
    #[serde(default = "default_user_headers")]
    pub user_headers: Vec<String>,
    /// Users (as the headers name them) with the admin role.
    #[serde(default)]
    pub admins: Vec<String>,
    /// The role of every other user the proxy names.
    #[serde(default = "viewer")]
    pub default_role: Role,
}

fn default_user_headers() -> Vec<String> {
    [
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "X-Forwarded-User",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn viewer() -> Role {
    Role::Viewer
}

impl Check for ProxyAuthConfig {
    fn check(&self) -> Result<(), String> {
        if self.trusted_proxies.is_empty() {
            return Err(
                "trusted_proxies must name the proxy's addresses: from any other, user headers are ignored"
                    .into(),
            );
        }
        if self.user_headers.is_empty() {
            return Err("user_headers must name at least one header".into());
        }
        if let Some(bad) = self
            .user_headers
            .iter()
            .find(|name| is_not_a_header_name(name))
        {
            return Err(format!("user_headers: {bad:?} is not a header name"));
        }
        Ok(())
    }
}

/// Whether `name` cannot be an HTTP header name (RFC 9110 token characters only).
fn is_not_a_header_name(name: &str) -> bool {
    name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl ProxyAuthConfig {
    /// Whether a request from `peer` may name its user in the headers.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.trusted_proxies
            .iter()
            .any(|range| range.0.contains(&peer))
    }

    /// The role of the user `name`.
    pub fn role_of(&self, name: &str) -> Role {
        if self.admins.iter().any(|admin| admin == name) {
            Role::Admin
        } else {
            self.default_role
        }
    }
}

/// What a request without credentials may do when authentication is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousAccess {
    /// Nothing: it is answered 401.
    #[default]
    None,
    /// Read, as a viewer.
    Viewer,
}

/// An address or a network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRange(pub ipnet::IpNet);

impl FromStr for AddressRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map(AddressRange)
            .map_err(|_| format!("{text:?} is neither an IP address nor a network like 10.0.0.0/8"))
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for AddressRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for AddressRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusts_only_the_listed_addresses_and_networks() {
        let proxy = ProxyAuthConfig {
            trusted_proxies: vec![
                "127.0.0.1".parse().unwrap(),
                "10.42.0.0/16".parse().unwrap(),
            ],
            user_headers: default_user_headers(),
            admins: vec!["alice".into()],
            default_role: Role::Viewer,
        };
        assert!(proxy.trusts("127.0.0.1".parse().unwrap()));
        assert!(proxy.trusts("::ffff:127.0.0.1".parse().unwrap()));
        assert!(proxy.trusts("10.42.7.9".parse().unwrap()));
        assert!(!proxy.trusts("127.0.0.2".parse().unwrap()));
        assert!(!proxy.trusts("10.43.0.1".parse().unwrap()));
        assert_eq!(proxy.role_of("alice"), Role::Admin);
        assert_eq!(proxy.role_of("bob"), Role::Viewer);
        assert!("10.0.0.0/33".parse::<AddressRange>().is_err());
    }
}
