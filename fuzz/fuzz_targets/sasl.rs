//! Fuzz target: arbitrary bytes as the SASL tokens a client sends (PLAIN, SCRAM client-first
//! and client-final, OAUTHBEARER) and as the SCRAM server messages a client reads.
//!
//! Properties: no parser panics or allocates beyond a small multiple of its input; what parses
//! keeps the invariants the broker's exchange relies on (non-empty user names and passwords,
//! nonces without commas, at most `MAX_EXTENSIONS` extensions, a non-empty bearer token); a
//! parsed SCRAM user name re-escapes to a name that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_protocol::sasl::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_plain(data) {
        assert!(!m.username.is_empty() && !m.password.is_empty());
    }
    if let Ok(m) = parse_scram_client_first(data) {
        assert!(!m.username.is_empty());
        assert!(!m.client_nonce.is_empty() && !m.client_nonce.contains(','));
        assert!(m.extensions.len() <= MAX_EXTENSIONS);
        assert!(m.bare.len() < data.len());
        let escaped = encode_saslname(&m.username);
        assert_eq!(decode_saslname(&escaped).as_deref(), Ok(m.username.as_str()));
    }
    if let Ok(m) = parse_scram_client_final(data) {
        assert!(!m.nonce.contains(','));
        assert!(m.proof.len() <= data.len());
        assert!(m.without_proof.len() < data.len());
    }
    if let Ok(m) = parse_oauthbearer_client_first(data) {
        assert!(!m.token.is_empty());
        assert!(m.extensions.len() <= MAX_EXTENSIONS);
    }
    if let Ok(m) = parse_scram_server_first(data) {
        assert!(m.iterations > 0 && !m.nonce.is_empty());
    }
    let _ = parse_scram_server_final(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(name) = decode_saslname(s) {
            assert!(!name.is_empty() && name.len() <= s.len());
        }
    }
});
