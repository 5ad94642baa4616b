//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): credentials and both sides of the
//! exchange, from RustCrypto's `hmac`, `sha2` and `pbkdf2`.
//!
//! A stored credential is Kafka's: salt, iterations, `StoredKey = H(HMAC(SaltedPassword,
//! "Client Key"))` and `ServerKey = HMAC(SaltedPassword, "Server Key")`; the password and the
//! salted password are never kept. The server side is pure (the nonce is passed in): it turns
//! client messages into server messages or a failure. Proofs are compared in constant time.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use weir_protocol::sasl::{
    parse_scram_client_final, parse_scram_client_first, parse_scram_server_final,
    parse_scram_server_first, scram_client_first, scram_server_final, scram_server_first,
    ScramServerFinal,
};

/// Fewest PBKDF2 iterations accepted for a stored credential (Kafka's minimum).
pub const MIN_ITERATIONS: u32 = 4096;
/// Most PBKDF2 iterations accepted (Kafka's maximum): bounds the work one PLAIN login costs.
pub const MAX_ITERATIONS: u32 = 16384;
/// Iterations used when none is asked for.
pub const DEFAULT_ITERATIONS: u32 = 8192;
/// Longest salt accepted, in bytes.
pub const MAX_SALT_BYTES: usize = 1024;

/// A SCRAM hash.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism's number in DescribeUserScramCredentials / AlterUserScramCredentials.
    pub fn wire_type(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn from_wire(t: i8) -> Option<Self> {
        match t {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    fn hmac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .expect("HMAC takes keys of any length");
                mac.update(msg);
                mac.finalize().into_bytes().to_vec()
            }
            Self::Sha512 => {
                let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key)
                    .expect("HMAC takes keys of any length");
                mac.update(msg);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// Bytes of the hash's output.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this hash's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.digest_len()];
        match self {
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Self::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }

    /// The stored credential for a salted password.
    pub fn credential_from_salted(
        self,
        salt: &[u8],
        salted_password: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = self.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: self.hash(&client_key),
            server_key: self.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// A new credential for `password` with a random salt.
    pub fn credential(self, password: &str, iterations: u32) -> ScramCredential {
        let salt = random_bytes(32);
        let salted = self.salted_password(password.as_bytes(), &salt, iterations);
        self.credential_from_salted(&salt, &salted, iterations)
    }
}

/// Random bytes from the OS-seeded CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

/// A fresh SCRAM nonce (printable, no commas).
pub fn new_nonce() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(24))
}

mod b64 {
    use super::B64;
    use base64::Engine;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

/// A stored SCRAM credential (no password, no salted password).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Whether `password` is the one this credential was made from (for SASL/PLAIN).
    pub fn verify_password(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let salted = mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        bool::from(mechanism.hash(&client_key).ct_eq(&self.stored_key))
    }
}

/// A credential that matches no password, for unknown users: the exchange runs to its end and
/// fails the same way as a wrong password, so user names cannot be probed. The salt is derived
/// from the name with a per-process key, so repeated attempts see the same salt.
pub fn decoy_credential(mechanism: ScramMechanism, username: &str) -> ScramCredential {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| random_bytes(32));
    let salt = mechanism.hmac(key, username.as_bytes());
    ScramCredential {
        salt: salt[..mechanism.digest_len().min(32)].to_vec(),
        stored_key: random_bytes(mechanism.digest_len()),
        server_key: random_bytes(mechanism.digest_len()),
        iterations: DEFAULT_ITERATIONS,
    }
}

/// Why a SCRAM exchange failed (the client is only told that authentication failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    #[error("authorization id differs from the user name")]
    AuthzidMismatch,
    #[error("SCRAM extensions are not supported (delegation tokens)")]
    UnsupportedExtension,
    #[error("nonce or channel binding mismatch")]
    Mismatch,
    #[error("invalid credentials")]
    InvalidCredentials,
}

/// Server state between the client-first and client-final messages.
#[derive(Clone)]
pub struct ScramServerFirstSent {
    mechanism: ScramMechanism,
    username: String,
    /// Whether the user exists (else the credential is a decoy).
    known: bool,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    client_nonce: String,
    nonce: String,
}

impl ScramServerFirstSent {
    pub fn username(&self) -> &str {
        &self.username
    }
}

/// Handles the client-first message: looks the user up and answers with the server-first
/// message. `lookup` returns the user's stored credential; `server_nonce` is fresh randomness.
pub fn server_first(
    mechanism: ScramMechanism,
    client_first: &[u8],
    lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    server_nonce: &str,
) -> Result<(ScramServerFirstSent, Vec<u8>), ScramError> {
    let m =
        parse_scram_client_first(client_first).map_err(|e| ScramError::Malformed(e.to_string()))?;
    if m.authzid.as_deref().is_some_and(|a| a != m.username) {
        return Err(ScramError::AuthzidMismatch);
    }
    if !m.extensions.is_empty() {
        return Err(ScramError::UnsupportedExtension);
    }
    let (known, credential) = match lookup(&m.username) {
        Some(c) => (true, c),
        None => (false, decoy_credential(mechanism, &m.username)),
    };
    let nonce = format!("{}{server_nonce}", m.client_nonce);
    let server_first = scram_server_first(&nonce, &credential.salt, credential.iterations);
    let reply = server_first.clone().into_bytes();
    Ok((
        ScramServerFirstSent {
            mechanism,
            username: m.username,
            known,
            credential,
            gs2_header: m.gs2_header,
            client_first_bare: m.bare,
            server_first,
            client_nonce: m.client_nonce,
            nonce,
        },
        reply,
    ))
}

/// Handles the client-final message: checks the proof and returns the user name and the
/// server-final message.
pub fn server_final(
    state: &ScramServerFirstSent,
    client_final: &[u8],
) -> Result<(String, Vec<u8>), ScramError> {
    let m =
        parse_scram_client_final(client_final).map_err(|e| ScramError::Malformed(e.to_string()))?;
    // RFC 5802 wants the server's nonce back; librdkafka (up to at least 2.0) sends its own
    // nonce in front of it again, which Kafka accepts (it checks only the suffix). Accept
    // exactly those two forms: both carry the server's fresh nonce, which the proof signs.
    let nonce_ok = m.nonce == state.nonce
        || m.nonce
            .strip_prefix(state.client_nonce.as_str())
            .is_some_and(|rest| rest == state.nonce);
    if !nonce_ok || m.channel_binding != state.gs2_header.as_bytes() {
        return Err(ScramError::Mismatch);
    }
    let mech = state.mechanism;
    let auth_message = format!(
        "{},{},{}",
        state.client_first_bare, state.server_first, m.without_proof
    );
    let client_signature = mech.hmac(&state.credential.stored_key, auth_message.as_bytes());
    if m.proof.len() != client_signature.len() {
        return Err(ScramError::InvalidCredentials);
    }
    let client_key: Vec<u8> = m
        .proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let matches = bool::from(mech.hash(&client_key).ct_eq(&state.credential.stored_key));
    if !(matches && state.known) {
        return Err(ScramError::InvalidCredentials);
    }
    let server_signature = mech.hmac(&state.credential.server_key, auth_message.as_bytes());
    Ok((
        state.username.clone(),
        scram_server_final(&server_signature).into_bytes(),
    ))
}

/// The client side of a SCRAM exchange, for the CLI and tests.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    client_nonce: String,
    server_signature: Vec<u8>,
}

impl ScramClient {
    /// Starts an exchange; returns the client and its client-first message.
    pub fn start(mechanism: ScramMechanism, username: &str, password: &str) -> (Self, Vec<u8>) {
        let client_nonce = new_nonce();
        let first = scram_client_first(username, &client_nonce);
        let bare = first.trim_start_matches("n,,").to_string();
        (
            Self {
                mechanism,
                password: password.to_string(),
                client_first_bare: bare,
                client_nonce,
                server_signature: Vec::new(),
            },
            first.into_bytes(),
        )
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let sf = parse_scram_server_first(server_first)
            .map_err(|e| ScramError::Malformed(e.to_string()))?;
        if !sf.nonce.starts_with(&self.client_nonce) || sf.iterations > MAX_ITERATIONS {
            return Err(ScramError::Mismatch);
        }
        let mech = self.mechanism;
        let salted = mech.salted_password(self.password.as_bytes(), &sf.salt, sf.iterations);
        let client_key = mech.hmac(&salted, b"Client Key");
        let stored_key = mech.hash(&client_key);
        let without_proof = format!("c={},r={}", B64.encode("n,,"), sf.nonce);
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = mech.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = mech.hmac(&salted, b"Server Key");
        self.server_signature = mech.hmac(&server_key, auth_message.as_bytes());
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (the server proves it knows the credential too).
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        match parse_scram_server_final(server_final)
            .map_err(|e| ScramError::Malformed(e.to_string()))?
        {
            ScramServerFinal::Verifier(v)
                if bool::from(v.ct_eq(&self.server_signature)) && !v.is_empty() =>
            {
                Ok(())
            }
            _ => Err(ScramError::InvalidCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn rfc7677_example_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let mech = ScramMechanism::Sha256;
        let salted = mech.salted_password(b"pencil", &salt, 4096);
        let cred = mech.credential_from_salted(&salt, &salted, 4096);
        let (state, first) = server_first(
            mech,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            |u| (u == "user").then(|| cred.clone()),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .expect("first");
        assert_eq!(
            first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (user, fin) = server_final(
            &state,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        .expect("final");
        assert_eq!(user, "user");
        assert_eq!(fin, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    fn exchange(
        mech: ScramMechanism,
        stored: &ScramCredential,
        password: &str,
    ) -> Result<String, ScramError> {
        let (mut client, first) = ScramClient::start(mech, "alice", password);
        let (state, sf) = server_first(mech, &first, |_| Some(stored.clone()), &new_nonce())?;
        let cf = client.client_final(&sf)?;
        let (user, fin) = server_final(&state, &cf)?;
        client.verify_server_final(&fin)?;
        Ok(user)
    }

    #[test]
    fn both_hashes_accept_the_password_and_nothing_else() {
        for mech in ScramMechanism::ALL {
            let cred = mech.credential("s3cret", MIN_ITERATIONS);
            assert_eq!(exchange(mech, &cred, "s3cret"), Ok("alice".to_string()));
            assert_eq!(
                exchange(mech, &cred, "wrong"),
                Err(ScramError::InvalidCredentials)
            );
            assert!(cred.verify_password(mech, "s3cret"));
            assert!(!cred.verify_password(mech, "s3cret "));
        }
    }

    #[test]
    fn unknown_users_fail_at_the_end_with_a_stable_salt() {
        let mech = ScramMechanism::Sha512;
        let (mut client, first) = ScramClient::start(mech, "nobody", "pw");
        let (state, sf) = server_first(mech, &first, |_| None, "n1").expect("first");
        let (_, sf2) = server_first(mech, &first, |_| None, "n1").expect("first again");
        assert_eq!(sf, sf2, "a decoy salt must not change between attempts");
        let cf = client.client_final(&sf).expect("client final");
        assert_eq!(
            server_final(&state, &cf),
            Err(ScramError::InvalidCredentials)
        );
    }

    #[test]
    fn tampering_fails() {
        let mech = ScramMechanism::Sha256;
        let cred = mech.credential("pw", MIN_ITERATIONS);
        let (mut client, first) = ScramClient::start(mech, "alice", "pw");
        let (state, sf) = server_first(mech, &first, |_| Some(cred.clone()), "xyz").expect("first");
        let cf = String::from_utf8(client.client_final(&sf).expect("final")).expect("utf8");
        // librdkafka's form (its nonce twice) passes the nonce check; anything else fails.
        let (_, fin) = server_first(mech, &first, |_| Some(cred.clone()), "xyz").expect("first");
        let _ = fin;
        let nonce = cf
            .split(",r=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .expect("nonce");
        let client_nonce = nonce.trim_end_matches("xyz");
        let doubled = cf.replace(&format!(",r={nonce}"), &format!(",r={client_nonce}{nonce}"));
        assert_eq!(
            server_final(&state, doubled.as_bytes()),
            Err(ScramError::InvalidCredentials),
            "the nonce passes; the proof, made over the other nonce, does not"
        );
        let other_nonce = cf.replace("xyz", "xyy");
        assert_eq!(
            server_final(&state, other_nonce.as_bytes()),
            Err(ScramError::Mismatch)
        );
        let short_proof = format!("{},p=AAAA", cf.rsplit_once(",p=").expect("proof").0);
        assert_eq!(
            server_final(&state, short_proof.as_bytes()),
            Err(ScramError::InvalidCredentials)
        );
        assert!(matches!(
            server_first(mech, b"n,a=bob,n=alice,r=abc", |_| None, "x"),
            Err(ScramError::AuthzidMismatch)
        ));
        assert!(matches!(
            server_first(mech, b"n,,n=alice,r=abc,tokenauth=true", |_| None, "x"),
            Err(ScramError::UnsupportedExtension)
        ));
        assert!(matches!(
            server_first(mech, b"garbage", |_| None, "x"),
            Err(ScramError::Malformed(_))
        ));
    }
}
