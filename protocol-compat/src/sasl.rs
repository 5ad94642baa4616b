//! The messages inside SASL tokens: PLAIN (RFC 4616), SCRAM (RFC 5802, RFC 7677) and
//! OAUTHBEARER (RFC 7628). Pure parsing and formatting, no cryptography and no state: the
//! broker's `security::sasl` runs the exchanges and checks the proofs; clients (the CLI, tests)
//! use the client-side helpers.
//!
//! Every parser takes the token as the client sent it and returns an error for anything that is
//! not well formed; none allocates more than a small multiple of its input, and lists (SCRAM
//! extensions, OAUTHBEARER key-value pairs) are capped at [`MAX_EXTENSIONS`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Most SCRAM extensions or OAUTHBEARER key-value pairs accepted in one message.
pub const MAX_EXTENSIONS: usize = 32;

/// Why a SASL message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslParseError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("too many extensions")]
    TooManyExtensions,
}

type Result<T> = std::result::Result<T, SaslParseError>;

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| SaslParseError::NotUtf8)
}

// ---------------------------------------------------------------------------------------------
// PLAIN
// ---------------------------------------------------------------------------------------------

/// A PLAIN message: `[authzid] NUL authcid NUL passwd`.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    /// Authorization id; empty when absent.
    pub authzid: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

impl std::fmt::Debug for PlainMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Parses a PLAIN message. Username and password must be non-empty.
pub fn parse_plain(bytes: &[u8]) -> Result<PlainMessage<'_>> {
    let text = utf8(bytes)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslParseError::Malformed("PLAIN message"));
    };
    if username.is_empty() || password.is_empty() {
        return Err(SaslParseError::Malformed("PLAIN message"));
    }
    Ok(PlainMessage {
        authzid,
        username,
        password,
    })
}

// ---------------------------------------------------------------------------------------------
// GS2 header (shared by SCRAM and OAUTHBEARER)
// ---------------------------------------------------------------------------------------------

/// Splits `gs2-cbind-flag "," [authzid] ","` off the front of `text`; returns the authzid (if
/// any) and the rest. Channel binding (`p=`) is refused; `n` and `y` are accepted.
fn split_gs2_header(text: &str) -> Result<(Option<String>, &str, &str)> {
    let (flag, rest) = text
        .split_once(',')
        .ok_or(SaslParseError::Malformed("GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(SaslParseError::ChannelBinding),
        _ => return Err(SaslParseError::Malformed("GS2 header")),
    }
    let (authz, rest) = rest
        .split_once(',')
        .ok_or(SaslParseError::Malformed("GS2 header"))?;
    let authzid = if authz.is_empty() {
        None
    } else {
        let name = authz
            .strip_prefix("a=")
            .ok_or(SaslParseError::Malformed("GS2 authzid"))?;
        Some(decode_saslname(name)?)
    };
    let header_len = flag.len() + 1 + authz.len() + 1;
    Ok((authzid, &text[..header_len], rest))
}

/// Decodes a SCRAM `saslname`: `=2C` is `,`, `=3D` is `=`, any other `=` is an error.
pub fn decode_saslname(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3);
        match esc {
            Some("=2C") | Some("=2c") => out.push(','),
            Some("=3D") | Some("=3d") => out.push('='),
            _ => return Err(SaslParseError::Malformed("escaped name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(SaslParseError::Malformed("empty name"));
    }
    Ok(out)
}

/// Encodes a name as a SCRAM `saslname`.
pub fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

// ---------------------------------------------------------------------------------------------
// SCRAM
// ---------------------------------------------------------------------------------------------

/// The client-first message of a SCRAM exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramClientFirst {
    /// The GS2 header exactly as sent (the client-final message repeats it, base64-encoded).
    pub gs2_header: String,
    pub authzid: Option<String>,
    pub username: String,
    pub client_nonce: String,
    /// `client-first-message-bare`, part of the AuthMessage both sides sign.
    pub bare: String,
    /// Extensions after the nonce (`key=value`), e.g. Kafka's `tokenauth=true`.
    pub extensions: Vec<(String, String)>,
}

/// A SCRAM nonce: printable ASCII except `,`.
fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Parses `gs2-header "n=" saslname ",r=" c-nonce ["," extensions]`.
pub fn parse_scram_client_first(bytes: &[u8]) -> Result<ScramClientFirst> {
    let text = utf8(bytes)?;
    let (authzid, gs2_header, bare) = split_gs2_header(text)?;
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or(SaslParseError::Malformed("SCRAM username"))?;
    let username = decode_saslname(user)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or(SaslParseError::Malformed("SCRAM nonce"))?;
    let mut extensions = Vec::new();
    for a in attrs {
        if extensions.len() == MAX_EXTENSIONS {
            return Err(SaslParseError::TooManyExtensions);
        }
        let (k, v) = a
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or(SaslParseError::Malformed("SCRAM extension"))?;
        extensions.push((k.to_string(), v.to_string()));
    }
    Ok(ScramClientFirst {
        gs2_header: gs2_header.to_string(),
        authzid,
        username,
        client_nonce: client_nonce.to_string(),
        bare: bare.to_string(),
        extensions,
    })
}

/// The client-final message of a SCRAM exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramClientFinal {
    /// The decoded `c=` attribute: the GS2 header (no channel binding data is supported).
    pub channel_binding: Vec<u8>,
    /// The combined client and server nonce.
    pub nonce: String,
    /// The decoded client proof.
    pub proof: Vec<u8>,
    /// `client-final-message-without-proof`, part of the AuthMessage.
    pub without_proof: String,
}

impl std::fmt::Debug for ScramClientFinal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClientFinal")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// Parses `"c=" base64 ",r=" nonce ["," extensions] ",p=" base64`.
pub fn parse_scram_client_final(bytes: &[u8]) -> Result<ScramClientFinal> {
    let text = utf8(bytes)?;
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or(SaslParseError::Malformed("SCRAM proof"))?;
    let proof = B64
        .decode(proof)
        .map_err(|_| SaslParseError::Malformed("SCRAM proof"))?;
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .and_then(|c| B64.decode(c).ok())
        .ok_or(SaslParseError::Malformed("SCRAM channel binding"))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or(SaslParseError::Malformed("SCRAM nonce"))?;
    for (i, a) in attrs.enumerate() {
        if i == MAX_EXTENSIONS {
            return Err(SaslParseError::TooManyExtensions);
        }
        if !a.contains('=') {
            return Err(SaslParseError::Malformed("SCRAM extension"));
        }
    }
    Ok(ScramClientFinal {
        channel_binding,
        nonce: nonce.to_string(),
        proof,
        without_proof: without_proof.to_string(),
    })
}

/// `server-first-message`: `r=nonce,s=base64(salt),i=iterations`.
pub fn scram_server_first(nonce: &str, salt: &[u8], iterations: u32) -> String {
    format!("r={nonce},s={},i={iterations}", B64.encode(salt))
}

/// `server-final-message` of a successful exchange: `v=base64(ServerSignature)`.
pub fn scram_server_final(server_signature: &[u8]) -> String {
    format!("v={}", B64.encode(server_signature))
}

/// `client-first-message` with no authzid: `n,,n=user,r=nonce`.
pub fn scram_client_first(username: &str, client_nonce: &str) -> String {
    format!("n,,n={},r={client_nonce}", encode_saslname(username))
}

/// A parsed `server-first-message` (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramServerFirst {
    pub nonce: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

/// Parses `server-first-message` (client side).
pub fn parse_scram_server_first(bytes: &[u8]) -> Result<ScramServerFirst> {
    let text = utf8(bytes)?;
    let mut attrs = text.split(',');
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or(SaslParseError::Malformed("SCRAM nonce"))?;
    let salt = attrs
        .next()
        .and_then(|a| a.strip_prefix("s="))
        .and_then(|s| B64.decode(s).ok())
        .ok_or(SaslParseError::Malformed("SCRAM salt"))?;
    let iterations = attrs
        .next()
        .and_then(|a| a.strip_prefix("i="))
        .and_then(|i| i.parse().ok())
        .filter(|&i| i > 0)
        .ok_or(SaslParseError::Malformed("SCRAM iterations"))?;
    Ok(ScramServerFirst {
        nonce: nonce.to_string(),
        salt,
        iterations,
    })
}

/// What a `server-final-message` says (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramServerFinal {
    /// `v=`: the server signature to check.
    Verifier(Vec<u8>),
    /// `e=`: the server's error.
    Error(String),
}

/// Parses `server-final-message` (client side).
pub fn parse_scram_server_final(bytes: &[u8]) -> Result<ScramServerFinal> {
    let text = utf8(bytes)?;
    let first = text.split(',').next().unwrap_or_default();
    if let Some(v) = first.strip_prefix("v=") {
        let sig = B64
            .decode(v)
            .map_err(|_| SaslParseError::Malformed("SCRAM verifier"))?;
        Ok(ScramServerFinal::Verifier(sig))
    } else if let Some(e) = first.strip_prefix("e=") {
        Ok(ScramServerFinal::Error(e.to_string()))
    } else {
        Err(SaslParseError::Malformed("SCRAM server-final message"))
    }
}

// ---------------------------------------------------------------------------------------------
// OAUTHBEARER
// ---------------------------------------------------------------------------------------------

/// The client's initial OAUTHBEARER response.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthBearerClientFirst {
    pub authzid: Option<String>,
    /// The bearer token (a JWT, for Weir).
    pub token: String,
    /// SASL extensions (`key=value` pairs other than `auth`).
    pub extensions: Vec<(String, String)>,
}

impl std::fmt::Debug for OAuthBearerClientFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthBearerClientFirst")
            .field("authzid", &self.authzid)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

const KVSEP: char = '\u{1}';

/// Parses `gs2-header %x01 *(key "=" value %x01) %x01`, which must carry `auth=Bearer <token>`.
pub fn parse_oauthbearer_client_first(bytes: &[u8]) -> Result<OAuthBearerClientFirst> {
    let text = utf8(bytes)?;
    let (authzid, _, rest) = split_gs2_header(text)?;
    let body = rest
        .strip_prefix(KVSEP)
        .and_then(|r| r.strip_suffix(KVSEP))
        .and_then(|r| r.strip_suffix(KVSEP))
        .ok_or(SaslParseError::Malformed("OAUTHBEARER message"))?;
    let mut token = None;
    let mut extensions = Vec::new();
    for kv in body.split(KVSEP) {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic()))
            .ok_or(SaslParseError::Malformed("OAUTHBEARER key-value pair"))?;
        if k == "auth" {
            if token.is_some() {
                return Err(SaslParseError::Malformed("OAUTHBEARER auth"));
            }
            let (scheme, t) = v
                .split_once(' ')
                .ok_or(SaslParseError::Malformed("OAUTHBEARER auth"))?;
            let t = t.trim();
            if !scheme.eq_ignore_ascii_case("Bearer") || t.is_empty() {
                return Err(SaslParseError::Malformed("OAUTHBEARER auth"));
            }
            token = Some(t.to_string());
        } else {
            if extensions.len() == MAX_EXTENSIONS {
                return Err(SaslParseError::TooManyExtensions);
            }
            extensions.push((k.to_string(), v.to_string()));
        }
    }
    Ok(OAuthBearerClientFirst {
        authzid,
        token: token.ok_or(SaslParseError::Malformed("OAUTHBEARER auth"))?,
        extensions,
    })
}

/// The client's initial OAUTHBEARER response for `token` (client side).
pub fn oauthbearer_client_first(token: &str) -> String {
    format!("n,,{KVSEP}auth=Bearer {token}{KVSEP}{KVSEP}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_needs_three_fields_and_a_password() {
        let m = parse_plain(b"\0alice\0secret").expect("valid");
        assert_eq!((m.authzid, m.username, m.password), ("", "alice", "secret"));
        let m = parse_plain(b"alice\0alice\0s\0x");
        assert!(matches!(m, Err(SaslParseError::Malformed(_))));
        assert!(parse_plain(b"\0alice\0").is_err());
        assert!(parse_plain(b"\0\0pw").is_err());
        assert!(parse_plain(&[0, b'a', 0, 0xff]).is_err());
    }

    #[test]
    fn scram_client_first_rfc5802_example() {
        let m = parse_scram_client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").expect("valid");
        assert_eq!(m.gs2_header, "n,,");
        assert_eq!(m.username, "user");
        assert_eq!(m.client_nonce, "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(m.bare, "n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(m.authzid, None);
    }

    #[test]
    fn scram_names_are_unescaped_and_bad_escapes_rejected() {
        let m =
            parse_scram_client_first(b"n,a=b=2Cc,n=a=3Db=2Cc,r=abc,tokenauth=true").expect("valid");
        assert_eq!(m.username, "a=b,c");
        assert_eq!(m.authzid.as_deref(), Some("b,c"));
        assert_eq!(m.extensions, vec![("tokenauth".into(), "true".into())]);
        assert!(parse_scram_client_first(b"n,,n=a=4Xb,r=abc").is_err());
        assert!(parse_scram_client_first(b"n,,n=a=,r=abc").is_err());
        assert!(matches!(
            parse_scram_client_first(b"p=tls-unique,,n=a,r=abc"),
            Err(SaslParseError::ChannelBinding)
        ));
        assert!(parse_scram_client_first(b"n,,n=a,r=a,bc").is_err());
        assert!(parse_scram_client_first(b"n,,r=abc").is_err());
        assert_eq!(encode_saslname("a=b,c"), "a=3Db=2Cc");
    }

    #[test]
    fn scram_extension_count_is_bounded() {
        let mut msg = String::from("n,,n=u,r=abc");
        for i in 0..=MAX_EXTENSIONS {
            msg.push_str(&format!(",x{i}=1"));
        }
        assert!(matches!(
            parse_scram_client_first(msg.as_bytes()),
            Err(SaslParseError::TooManyExtensions)
        ));
    }

    #[test]
    fn scram_client_final_rfc5802_example() {
        let m = parse_scram_client_final(
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        )
        .expect("valid");
        assert_eq!(m.channel_binding, b"n,,");
        assert_eq!(m.nonce, "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j");
        assert_eq!(m.proof.len(), 20);
        assert_eq!(
            m.without_proof,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
        );
        assert!(parse_scram_client_final(b"c=biws,r=abc").is_err());
        assert!(parse_scram_client_final(b"c=biws,r=abc,p=!!!").is_err());
        assert!(parse_scram_client_final(b"r=abc,c=biws,p=AAAA").is_err());
    }

    #[test]
    fn scram_server_messages_round_trip() {
        let first = scram_server_first("abc", b"salt", 4096);
        let parsed = parse_scram_server_first(first.as_bytes()).expect("valid");
        assert_eq!(parsed.nonce, "abc");
        assert_eq!(parsed.salt, b"salt");
        assert_eq!(parsed.iterations, 4096);
        let fin = scram_server_final(b"sig");
        assert_eq!(
            parse_scram_server_final(fin.as_bytes()),
            Ok(ScramServerFinal::Verifier(b"sig".to_vec()))
        );
        assert_eq!(
            parse_scram_server_final(b"e=invalid-proof"),
            Ok(ScramServerFinal::Error("invalid-proof".into()))
        );
    }

    #[test]
    fn oauthbearer_client_first_messages() {
        let m = parse_oauthbearer_client_first(oauthbearer_client_first("a.b.c").as_bytes())
            .expect("valid");
        assert_eq!(m.token, "a.b.c");
        assert_eq!(m.authzid, None);
        let m = parse_oauthbearer_client_first(
            b"n,a=bob,\x01host=h\x01auth=Bearer t.t.t\x01traceId=1\x01\x01",
        )
        .expect("valid");
        assert_eq!(m.token, "t.t.t");
        assert_eq!(m.authzid.as_deref(), Some("bob"));
        assert_eq!(m.extensions.len(), 2);
        assert!(parse_oauthbearer_client_first(b"n,,\x01auth=Basic x\x01\x01").is_err());
        assert!(parse_oauthbearer_client_first(b"n,,\x01host=h\x01\x01").is_err());
        assert!(parse_oauthbearer_client_first(b"n,,\x01auth=Bearer t\x01").is_err());
        assert!(
            parse_oauthbearer_client_first(b"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01")
                .is_err()
        );
    }
}
