//! The SASL state machine of one connection (KIP-43, KIP-152, KIP-368): pure, no IO, time and
//! lookups passed in.
//!
//! A SASL connection starts `Start`. SaslHandshake picks an enabled mechanism (v0: the tokens
//! then come as bare frames; v1: inside SaslAuthenticate requests); each token advances the
//! mechanism's exchange until it succeeds (a [`Principal`], and a session lifetime when the
//! credential expires or `connections.max.reauth.ms` is set) or fails. A failure is final: the
//! server answers after the failure delay and closes. After success the client may re-authenticate
//! (a new SaslHandshake with the same mechanism, then the exchange); the principal must not change.

use std::sync::Arc;

use weir_protocol::sasl::{parse_oauthbearer_client_first, parse_plain};
use weir_protocol::ErrorCode;

use super::credentials::CredentialStore;
use super::oauth::JwtValidator;
use super::scram::{self, ScramMechanism, ScramServerFirstSent};
use super::Principal;

/// A SASL mechanism Weir serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }

    fn scram(self) -> Option<ScramMechanism> {
        match self {
            Self::ScramSha256 => Some(ScramMechanism::Sha256),
            Self::ScramSha512 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("'{s}' is not a SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)")
            })
    }
}

/// Parses a comma-separated mechanism list.
pub fn parse_mechanisms(s: &str) -> Result<Vec<Mechanism>, String> {
    let mut out = Vec::new();
    for m in s.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let m: Mechanism = m.parse()?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

/// What the state machine needs from the broker for one step.
pub struct SaslEnv<'a> {
    pub enabled: &'a [Mechanism],
    pub credentials: &'a Arc<dyn CredentialStore>,
    pub jwt: Option<&'a JwtValidator>,
    pub now_ms: i64,
    /// `connections.max.reauth.ms`; 0: unset.
    pub max_reauth_ms: u64,
}

/// A successful authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub principal: Principal,
    pub mechanism: Mechanism,
    /// Told to the client in SaslAuthenticate v1+; 0: the session does not expire.
    pub session_lifetime_ms: i64,
    /// When the session ends (a non-SASL request after it closes the connection).
    pub session_expires_at_ms: Option<i64>,
    /// Whether this was a re-authentication of an authenticated connection.
    pub reauthentication: bool,
}

/// The outcome of one SASL request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Answer with this error code and token, and go on.
    Continue {
        error_code: ErrorCode,
        auth_bytes: Vec<u8>,
    },
    /// Authentication is complete; answer with this final token.
    Done {
        auth_bytes: Vec<u8>,
        outcome: Authenticated,
    },
    /// Authentication failed: answer with this error (after the failure delay), then close.
    Failed {
        error_code: ErrorCode,
        /// Sent to the client (says nothing about which check failed).
        message: String,
        /// Logged only.
        reason: String,
        mechanism: Option<Mechanism>,
    },
    /// The request does not belong here (a protocol violation): close without answering.
    Close { reason: String },
}

#[derive(Clone)]
enum State {
    /// No mechanism chosen yet (also between sessions, ready for re-authentication).
    Start,
    /// A mechanism was chosen; its first token is next.
    Chosen(Mechanism),
    /// SCRAM server-first was sent; client-final is next.
    ScramFinal(Mechanism, Box<ScramServerFirstSent>),
    /// Failed: nothing more is accepted.
    Failed,
}

/// One connection's SASL state.
#[derive(Clone)]
pub struct SaslSession {
    state: State,
    /// Whether tokens come as bare frames (after SaslHandshake v0).
    raw_tokens: bool,
    /// The principal and mechanism of the first authentication, once there is one.
    authenticated: Option<(Principal, Mechanism)>,
}

impl Default for SaslSession {
    fn default() -> Self {
        Self::new()
    }
}

fn failed(mechanism: Option<Mechanism>, reason: impl Into<String>) -> Step {
    let reason = reason.into();
    Step::Failed {
        error_code: ErrorCode::SASL_AUTHENTICATION_FAILED,
        message: match mechanism {
            Some(m) => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {m}"
            ),
            None => "Authentication failed".to_string(),
        },
        reason,
        mechanism,
    }
}

impl SaslSession {
    pub fn new() -> Self {
        Self {
            state: State::Start,
            raw_tokens: false,
            authenticated: None,
        }
    }

    /// Whether the next frame is a bare SASL token (after a v0 handshake) rather than a request.
    pub fn expects_raw_token(&self) -> bool {
        self.raw_tokens && matches!(self.state, State::Chosen(_) | State::ScramFinal(..))
    }

    /// Whether an exchange is under way (a handshake was answered, the exchange not finished).
    pub fn in_progress(&self) -> bool {
        matches!(self.state, State::Chosen(_) | State::ScramFinal(..))
    }

    /// Whether the connection has authenticated at least once.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
    }

    /// SaslHandshake at `version`. Returns the response's error code; the mechanism list is
    /// the enabled ones.
    pub fn handshake(&mut self, mechanism: &str, version: i16, env: &SaslEnv<'_>) -> Step {
        if !matches!(self.state, State::Start) {
            self.state = State::Failed;
            return Step::Close {
                reason: "SaslHandshake during an exchange".into(),
            };
        }
        let chosen = mechanism
            .parse::<Mechanism>()
            .ok()
            .filter(|m| env.enabled.contains(m));
        let Some(chosen) = chosen else {
            self.state = State::Failed;
            return Step::Failed {
                error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
                message: format!("Unsupported SASL mechanism {mechanism}"),
                reason: format!("mechanism '{mechanism}' is not enabled"),
                mechanism: None,
            };
        };
        if let Some((_, first)) = &self.authenticated {
            if *first != chosen {
                self.state = State::Failed;
                return Step::Failed {
                    error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
                    message: format!(
                        "SASL mechanism '{chosen}' requested by client is not supported for re-authentication of mechanism '{first}'"
                    ),
                    reason: "re-authentication with another mechanism".into(),
                    mechanism: Some(chosen),
                };
            }
            if version == 0 {
                self.state = State::Failed;
                return Step::Close {
                    reason: "re-authentication needs SaslAuthenticate".into(),
                };
            }
        }
        self.raw_tokens = version == 0;
        self.state = State::Chosen(chosen);
        Step::Continue {
            error_code: ErrorCode::NONE,
            auth_bytes: Vec::new(),
        }
    }

    /// One client token (SaslAuthenticate's `auth_bytes`, or a bare frame after v0).
    pub fn authenticate(&mut self, token: &[u8], env: &SaslEnv<'_>) -> Step {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let step = match state {
            State::Start | State::Failed => {
                return Step::Close {
                    reason: "SaslAuthenticate without a SaslHandshake".into(),
                }
            }
            State::Chosen(Mechanism::Plain) => self.plain(token, env),
            State::Chosen(Mechanism::OAuthBearer) => self.oauthbearer(token, env),
            State::Chosen(m) => {
                let Some(hash) = m.scram() else {
                    return failed(Some(m), "no SCRAM hash");
                };
                let nonce = scram::new_nonce();
                match scram::server_first(hash, token, |u| env.credentials.get(u, hash), &nonce) {
                    Ok((sent, reply)) => {
                        self.state = State::ScramFinal(m, Box::new(sent));
                        Step::Continue {
                            error_code: ErrorCode::NONE,
                            auth_bytes: reply,
                        }
                    }
                    Err(e) => failed(Some(m), e.to_string()),
                }
            }
            State::ScramFinal(m, sent) => match scram::server_final(&sent, token) {
                Ok((user, reply)) => self.succeed(m, Principal::user(user), None, reply, env),
                Err(e) => failed(Some(m), format!("user '{}': {e}", sent.username())),
            },
        };
        if matches!(step, Step::Failed { .. } | Step::Close { .. }) {
            self.state = State::Failed;
        }
        step
    }

    fn plain(&mut self, token: &[u8], env: &SaslEnv<'_>) -> Step {
        let m = Mechanism::Plain;
        let msg = match parse_plain(token) {
            Ok(msg) => msg,
            Err(e) => return failed(Some(m), e.to_string()),
        };
        if !msg.authzid.is_empty() && msg.authzid != msg.username {
            return failed(Some(m), "authorization id differs from the user name");
        }
        // The strongest stored credential checks the password; an unknown user is checked
        // against a decoy so that both cost the same.
        let found = [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|h| env.credentials.get(msg.username, h).map(|c| (h, c)));
        let ok = match &found {
            Some((h, cred)) => cred.verify_password(*h, msg.password),
            None => {
                let decoy = scram::decoy_credential(ScramMechanism::Sha512, msg.username);
                let _ = decoy.verify_password(ScramMechanism::Sha512, msg.password);
                false
            }
        };
        if !ok {
            return failed(
                Some(m),
                format!("user '{}': invalid credentials", msg.username),
            );
        }
        let user = Principal::user(msg.username);
        self.succeed(m, user, None, Vec::new(), env)
    }

    fn oauthbearer(&mut self, token: &[u8], env: &SaslEnv<'_>) -> Step {
        let m = Mechanism::OAuthBearer;
        let msg = match parse_oauthbearer_client_first(token) {
            Ok(msg) => msg,
            Err(e) => return failed(Some(m), e.to_string()),
        };
        let Some(jwt) = env.jwt else {
            return failed(Some(m), "no JWKS configured");
        };
        let valid = match jwt.validate(&msg.token, env.now_ms) {
            Ok(v) => v,
            Err(e) => return failed(Some(m), e.to_string()),
        };
        if msg.authzid.as_deref().is_some_and(|a| a != valid.principal) {
            return failed(
                Some(m),
                "authorization id differs from the token's principal",
            );
        }
        let principal = Principal::user(valid.principal);
        self.succeed(m, principal, Some(valid.expires_at_ms), Vec::new(), env)
    }

    fn succeed(
        &mut self,
        mechanism: Mechanism,
        principal: Principal,
        credential_expires_at_ms: Option<i64>,
        auth_bytes: Vec<u8>,
        env: &SaslEnv<'_>,
    ) -> Step {
        let reauthentication = match &self.authenticated {
            Some((first, _)) if *first != principal => {
                return failed(
                    Some(mechanism),
                    format!("re-authentication changed the principal from {first} to {principal}"),
                );
            }
            Some(_) => true,
            None => false,
        };
        let max_reauth = i64::try_from(env.max_reauth_ms).unwrap_or(i64::MAX);
        let credential_left = credential_expires_at_ms.map(|e| e.saturating_sub(env.now_ms));
        // As Kafka: the session lasts until the credential expires or max reauth passes,
        // whichever is first; neither set means it never expires. A session that would end at
        // once still gets 1 ms, since 0 tells the client "never".
        let lifetime = match (max_reauth > 0, credential_left) {
            (false, None) => 0,
            (true, None) => max_reauth,
            (false, Some(left)) => left.max(1),
            (true, Some(left)) => left.min(max_reauth).max(1),
        };
        self.authenticated = Some((principal.clone(), mechanism));
        self.state = State::Start;
        self.raw_tokens = false;
        Step::Done {
            auth_bytes,
            outcome: Authenticated {
                principal,
                mechanism,
                session_lifetime_ms: lifetime,
                session_expires_at_ms: (lifetime > 0).then(|| env.now_ms.saturating_add(lifetime)),
                reauthentication,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::credentials::{CredentialChange, LocalCredentialStore};
    use crate::security::scram::ScramClient;
    use crate::security::SecurityConfig;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<dyn CredentialStore>,
        jwt: JwtValidator,
        signer: jsonwebtoken::EncodingKey,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = LocalCredentialStore::open(dir.path()).expect("store");
        let mut changes = Vec::new();
        for h in ScramMechanism::ALL {
            changes.push(CredentialChange::Upsert {
                user: "alice".into(),
                mechanism: h,
                credential: h.credential("alice-secret", 4096),
            });
        }
        local.apply_now(&changes).expect("apply");
        let (jwks, signer) = crate::security::oauth::tests::es256_keys();
        let jwks_path = dir.path().join("jwks.json");
        std::fs::write(&jwks_path, jwks).expect("jwks");
        let jwt = JwtValidator::load(&jwks_path, &SecurityConfig::default()).expect("jwt");
        Fixture {
            _dir: dir,
            store: Arc::new(local),
            jwt,
            signer,
        }
    }

    const NOW: i64 = 1_700_000_000_000;

    fn env<'a>(f: &'a Fixture, max_reauth_ms: u64, now_ms: i64) -> SaslEnv<'a> {
        SaslEnv {
            enabled: &Mechanism::ALL,
            credentials: &f.store,
            jwt: Some(&f.jwt),
            now_ms,
            max_reauth_ms,
        }
    }

    fn ok_handshake(s: &mut SaslSession, m: &str, e: &SaslEnv<'_>) {
        assert_eq!(
            s.handshake(m, 1, e),
            Step::Continue {
                error_code: ErrorCode::NONE,
                auth_bytes: Vec::new()
            }
        );
    }

    fn scram_login(s: &mut SaslSession, m: Mechanism, password: &str, e: &SaslEnv<'_>) -> Step {
        ok_handshake(s, m.name(), e);
        let hash = m.scram().expect("scram");
        let (mut client, first) = ScramClient::start(hash, "alice", password);
        let Step::Continue { auth_bytes, .. } = s.authenticate(&first, e) else {
            panic!("server-first expected");
        };
        let fin = client.client_final(&auth_bytes).expect("client final");
        let step = s.authenticate(&fin, e);
        if let Step::Done { auth_bytes, .. } = &step {
            client
                .verify_server_final(auth_bytes)
                .expect("server proves the credential");
        }
        step
    }

    #[test]
    fn scram_both_hashes_authenticate() {
        let f = fixture();
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let mut s = SaslSession::new();
            let step = scram_login(&mut s, m, "alice-secret", &env(&f, 0, NOW));
            let Step::Done { outcome, .. } = step else {
                panic!("{m}: {step:?}");
            };
            assert_eq!(outcome.principal, Principal::user("alice"));
            assert_eq!(outcome.session_lifetime_ms, 0);
            assert_eq!(outcome.session_expires_at_ms, None);
            assert!(s.is_authenticated());
        }
    }

    #[test]
    fn wrong_passwords_fail_and_the_session_stays_failed() {
        let f = fixture();
        let e = env(&f, 0, NOW);
        let mut s = SaslSession::new();
        let step = scram_login(&mut s, Mechanism::ScramSha256, "nope", &e);
        assert!(matches!(
            step,
            Step::Failed {
                error_code: ErrorCode::SASL_AUTHENTICATION_FAILED,
                ..
            }
        ));
        assert!(!s.is_authenticated());
        assert!(matches!(s.authenticate(b"x", &e), Step::Close { .. }));

        let mut s = SaslSession::new();
        ok_handshake(&mut s, "PLAIN", &e);
        assert!(matches!(
            s.authenticate(b"\0alice\0wrong", &e),
            Step::Failed { .. }
        ));
        let mut s = SaslSession::new();
        ok_handshake(&mut s, "PLAIN", &e);
        assert!(matches!(
            s.authenticate(b"\0bob\0x", &e),
            Step::Failed { .. }
        ));
    }

    #[test]
    fn plain_checks_the_password_against_the_scram_credential() {
        let f = fixture();
        let e = env(&f, 0, NOW);
        let mut s = SaslSession::new();
        ok_handshake(&mut s, "plain", &e);
        let step = s.authenticate(b"\0alice\0alice-secret", &e);
        assert!(
            matches!(&step, Step::Done { outcome, .. } if outcome.principal.name == "alice"),
            "{step:?}"
        );
        let mut s = SaslSession::new();
        ok_handshake(&mut s, "PLAIN", &e);
        assert!(matches!(
            s.authenticate(b"mallory\0alice\0alice-secret", &e),
            Step::Failed { .. }
        ));
    }

    #[test]
    fn handshake_refuses_disabled_mechanisms_and_wrong_order() {
        let f = fixture();
        let only_scram = [Mechanism::ScramSha512];
        let e = SaslEnv {
            enabled: &only_scram,
            ..env(&f, 0, NOW)
        };
        let mut s = SaslSession::new();
        assert!(matches!(
            s.handshake("PLAIN", 1, &e),
            Step::Failed {
                error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
                ..
            }
        ));
        let mut s = SaslSession::new();
        assert!(matches!(s.handshake("GSSAPI", 1, &e), Step::Failed { .. }));
        let mut s = SaslSession::new();
        assert!(matches!(
            s.authenticate(b"n,,n=a,r=b", &e),
            Step::Close { .. }
        ));
        let mut s = SaslSession::new();
        ok_handshake(&mut s, "SCRAM-SHA-512", &e);
        assert!(matches!(
            s.handshake("SCRAM-SHA-512", 1, &e),
            Step::Close { .. }
        ));
    }

    #[test]
    fn v0_handshake_means_bare_tokens() {
        let f = fixture();
        let e = env(&f, 0, NOW);
        let mut s = SaslSession::new();
        assert!(!s.expects_raw_token());
        assert!(matches!(s.handshake("PLAIN", 0, &e), Step::Continue { .. }));
        assert!(s.expects_raw_token());
        assert!(matches!(
            s.authenticate(b"\0alice\0alice-secret", &e),
            Step::Done { .. }
        ));
        assert!(!s.expects_raw_token());
    }

    fn bearer(f: &Fixture, claims: serde_json::Value) -> Vec<u8> {
        let t = crate::security::oauth::tests::token(&f.signer, "k1", claims);
        weir_protocol::sasl::oauthbearer_client_first(&t).into_bytes()
    }

    #[test]
    fn oauthbearer_session_lasts_until_the_token_expires_or_max_reauth() {
        let f = fixture();
        let exp_s = NOW / 1000 + 600;
        let msg = bearer(&f, serde_json::json!({"sub": "svc", "exp": exp_s}));
        for (max_reauth, lifetime) in [(0u64, 600_000i64), (60_000, 60_000), (900_000, 600_000)] {
            let e = env(&f, max_reauth, NOW);
            let mut s = SaslSession::new();
            ok_handshake(&mut s, "OAUTHBEARER", &e);
            let step = s.authenticate(&msg, &e);
            let Step::Done { outcome, .. } = step else {
                panic!("{step:?}");
            };
            assert_eq!(outcome.principal, Principal::user("svc"));
            assert_eq!(outcome.session_lifetime_ms, lifetime);
            assert_eq!(outcome.session_expires_at_ms, Some(NOW + lifetime));
        }
        let e = env(&f, 0, NOW);
        let mut s = SaslSession::new();
        ok_handshake(&mut s, "OAUTHBEARER", &e);
        let expired = bearer(
            &f,
            serde_json::json!({"sub": "svc", "exp": NOW / 1000 - 3600}),
        );
        assert!(matches!(s.authenticate(&expired, &e), Step::Failed { .. }));
    }

    #[test]
    fn reauthentication_keeps_mechanism_and_principal() {
        let f = fixture();
        let e = env(&f, 10_000, NOW);
        let mut s = SaslSession::new();
        let Step::Done { outcome, .. } =
            scram_login(&mut s, Mechanism::ScramSha256, "alice-secret", &e)
        else {
            panic!("first login");
        };
        assert_eq!(outcome.session_lifetime_ms, 10_000);
        assert!(!outcome.reauthentication);
        let later = env(&f, 10_000, NOW + 9_000);
        let Step::Done { outcome, .. } =
            scram_login(&mut s, Mechanism::ScramSha256, "alice-secret", &later)
        else {
            panic!("re-authentication");
        };
        assert!(outcome.reauthentication);
        assert_eq!(outcome.session_expires_at_ms, Some(NOW + 19_000));
        // Another mechanism is refused.
        assert!(matches!(
            s.handshake("SCRAM-SHA-512", 1, &later),
            Step::Failed {
                error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
                ..
            }
        ));

        // Another principal is refused.
        let mut s = SaslSession::new();
        ok_handshake(&mut s, "OAUTHBEARER", &e);
        let exp = NOW / 1000 + 600;
        assert!(matches!(
            s.authenticate(&bearer(&f, serde_json::json!({"sub": "a", "exp": exp})), &e),
            Step::Done { .. }
        ));
        ok_handshake(&mut s, "OAUTHBEARER", &e);
        assert!(matches!(
            s.authenticate(&bearer(&f, serde_json::json!({"sub": "b", "exp": exp})), &e),
            Step::Failed { .. }
        ));
    }
}
