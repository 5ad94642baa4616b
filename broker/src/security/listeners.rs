//! Kafka's listener model: `listeners` (`NAME://host:port`, comma-separated),
//! `advertised.listeners` (same form, what Metadata tells clients of that listener) and
//! `listener.security.protocol.map` (`NAME:PROTOCOL`, defaulting to each protocol's own name).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The security protocol of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SecurityProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Self::Plaintext),
            "SSL" => Ok(Self::Ssl),
            "SASL_PLAINTEXT" => Ok(Self::SaslPlaintext),
            "SASL_SSL" => Ok(Self::SaslSsl),
            _ => Err(format!(
                "'{s}' is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
            )),
        }
    }
}

/// One listener: where it binds, what it speaks, what it advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Listener name (upper case), e.g. `PLAINTEXT`, `EXTERNAL`.
    pub name: String,
    pub protocol: SecurityProtocol,
    pub addr: SocketAddr,
    /// host and port advertised in Metadata for this listener; `None`: the bound address.
    pub advertised: Option<(String, u16)>,
}

impl ListenerConfig {
    /// A PLAINTEXT listener named `PLAINTEXT` (what `--listener` means).
    pub fn plaintext(addr: SocketAddr, advertised: Option<(String, u16)>) -> Self {
        Self {
            name: "PLAINTEXT".to_string(),
            protocol: SecurityProtocol::Plaintext,
            addr,
            advertised,
        }
    }

    /// host and port clients are told to use for this listener.
    pub fn advertised_host_port(&self) -> (String, u16) {
        self.advertised
            .clone()
            .unwrap_or_else(|| (self.addr.ip().to_string(), self.addr.port()))
    }
}

/// Splits `NAME://host:port`; the host may be empty (all interfaces) or `[v6]`.
fn split_endpoint(s: &str) -> Result<(String, String, u16), String> {
    let (name, hostport) = s
        .split_once("://")
        .ok_or_else(|| format!("'{s}' is not NAME://host:port"))?;
    let name = name.trim().to_ascii_uppercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!("'{s}': bad listener name"));
    }
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{s}': '{port}' is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((name, host.to_string(), port))
}

/// Parses a `listener.security.protocol.map` (`NAME:PROTOCOL,...`). Without one, each of the
/// four protocol names maps to itself.
pub fn parse_protocol_map(s: Option<&str>) -> Result<HashMap<String, SecurityProtocol>, String> {
    let Some(s) = s.filter(|s| !s.trim().is_empty()) else {
        return Ok([
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .map(|p| (p.name().to_string(), p))
        .collect());
    };
    let mut map = HashMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, proto) = entry
            .split_once(':')
            .ok_or_else(|| format!("'{entry}' is not NAME:PROTOCOL"))?;
        let name = name.trim().to_ascii_uppercase();
        if map.insert(name.clone(), proto.trim().parse()?).is_some() {
            return Err(format!("listener {name} is mapped twice"));
        }
    }
    Ok(map)
}

/// Parses `listeners`, `advertised.listeners` and `listener.security.protocol.map` into the
/// listeners to bind.
pub fn parse_listeners(
    listeners: &str,
    advertised: Option<&str>,
    protocol_map: Option<&str>,
) -> Result<Vec<ListenerConfig>, String> {
    let map = parse_protocol_map(protocol_map)?;
    let mut out: Vec<ListenerConfig> = Vec::new();
    let mut ports = HashSet::new();
    for entry in listeners
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, host, port) = split_endpoint(entry)?;
        let protocol = *map.get(&name).ok_or_else(|| {
            format!("listener {name} has no security protocol (add it to listener-security-protocol-map)")
        })?;
        let ip: IpAddr = match host.as_str() {
            "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h => h
                .parse()
                .map_err(|_| format!("'{entry}': '{h}' is not an IP address"))?,
        };
        if out.iter().any(|l| l.name == name) {
            return Err(format!("listener {name} is named twice"));
        }
        if port != 0 && !ports.insert(port) {
            return Err(format!("port {port} is used by two listeners"));
        }
        out.push(ListenerConfig {
            name,
            protocol,
            addr: SocketAddr::new(ip, port),
            advertised: None,
        });
    }
    if out.is_empty() {
        return Err("no listener given".into());
    }
    if let Some(adv) = advertised {
        for entry in adv.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, host, port) = split_endpoint(entry)?;
            let listener = out
                .iter_mut()
                .find(|l| l.name == name)
                .ok_or_else(|| format!("advertised listener {name} is not a listener"))?;
            if listener.advertised.is_some() {
                return Err(format!("listener {name} is advertised twice"));
            }
            let host = if host.is_empty() {
                listener.addr.ip().to_string()
            } else {
                host
            };
            listener.advertised = Some((host, port));
        }
    }
    Ok(out)
}

/// Parses a `host:port` advertised address (what `--advertised-listener` takes).
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_style_listeners_with_a_protocol_map() {
        let l = parse_listeners(
            "INTERNAL://127.0.0.1:9092, EXTERNAL://:9093",
            Some("EXTERNAL://kafka.example.com:443"),
            Some("INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL"),
        )
        .expect("valid");
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "INTERNAL");
        assert_eq!(l[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(l[0].advertised_host_port(), ("127.0.0.1".to_string(), 9092));
        assert_eq!(l[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(l[1].addr, "0.0.0.0:9093".parse().expect("addr"));
        assert_eq!(
            l[1].advertised_host_port(),
            ("kafka.example.com".to_string(), 443)
        );
    }

    #[test]
    fn default_map_is_protocol_names() {
        let l = parse_listeners("SSL://127.0.0.1:1,SASL_PLAINTEXT://[::1]:2", None, None)
            .expect("valid");
        assert_eq!(l[0].protocol, SecurityProtocol::Ssl);
        assert_eq!(l[1].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(l[1].addr, "[::1]:2".parse().expect("addr"));
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse_listeners("EXTERNAL://127.0.0.1:1", None, None).expect_err("no protocol");
        assert!(e.contains("EXTERNAL"), "{e}");
        let e = parse_listeners("PLAINTEXT://127.0.0.1:1,SSL://127.0.0.1:1", None, None)
            .expect_err("same port");
        assert!(e.contains("port 1"), "{e}");
        let e = parse_listeners("PLAINTEXT://127.0.0.1:1", Some("SSL://h:2"), None)
            .expect_err("advertised unknown");
        assert!(e.contains("SSL"), "{e}");
        assert!(parse_listeners("PLAINTEXT://127.0.0.1", None, None).is_err());
        assert!(parse_listeners("PLAINTEXT://host.example:1", None, None).is_err());
        assert!(parse_protocol_map(Some("A:TLS")).is_err());
    }
}
