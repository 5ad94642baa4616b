//! TLS (rustls on the ring provider): TLS 1.2 and 1.3 only, the provider's AEAD
//! cipher suites only (AES-GCM, ChaCha20-Poly1305, ECDHE key exchange) in the broker's order of
//! preference (AES-128-GCM first, or Kafka's `ssl.cipher.suites` as `ssl-cipher-suites`), optional client
//! certificates checked against a client CA (mTLS); and the client side brokers use to reach
//! each other (`client_config`).
//!
//! The active `ServerConfig` sits behind a lock and is swapped whole on reload (SIGHUP, or a
//! changed file seen by the broker's timer): each handshake takes the config current when it
//! starts, so open connections are never dropped by a reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{mtime, ClientAuth, SecurityConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("a TLS listener needs {0}")]
    Missing(&'static str),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Rustls(String),
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate found"));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The suites a TLS listener offers when `ssl-cipher-suites` is not set, in the broker's order
/// of preference: AES-128-GCM first (the same AEAD as AES-256-GCM with 10 rounds instead of 14;
/// clients such as OpenSSL list AES-256 first, and the broker's order decides), ChaCha20-Poly1305
/// last (clients without AES instructions offer it alone). Measured on the 2-core project
/// machine the throughput difference to AES-256-GCM was within noise (docs/benchmarks.md).
const DEFAULT_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// A suite's IANA name, as Kafka's `ssl.cipher.suites` spells it (rustls writes TLS 1.3 suites
/// as `TLS13_...`).
fn iana_name(suite: &rustls::SupportedCipherSuite) -> Option<String> {
    let name = suite.suite().as_str()?;
    Some(match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_string(),
    })
}

/// The suites named by `names` (Kafka's `ssl.cipher.suites`, IANA names), in that order, which is
/// the server's order of preference; an empty list is Weir's default order. A name this build
/// does not support is an error, so a typo never silently weakens or empties the list.
pub fn cipher_suites(names: &[String]) -> Result<Vec<rustls::SupportedCipherSuite>, TlsError> {
    let available = rustls::crypto::ring::default_provider().cipher_suites;
    let wanted: Vec<&str> = if names.is_empty() {
        DEFAULT_CIPHER_SUITES.to_vec()
    } else {
        // Trimmed and non-empty already: the config parser splits the list.
        names.iter().map(String::as_str).collect()
    };
    wanted
        .into_iter()
        .map(|name| {
            available
                .iter()
                .find(|s| iana_name(s).as_deref() == Some(name))
                .copied()
                .ok_or_else(|| {
                    let known: Vec<String> = available.iter().filter_map(iana_name).collect();
                    TlsError::Rustls(format!(
                        "unsupported cipher suite '{name}' (supported: {})",
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

/// The ring provider restricted to `suites`, in their order.
fn provider_with(suites: Vec<rustls::SupportedCipherSuite>) -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::ring::default_provider()
    })
}

/// The protocol versions that `suites` can serve (TLS 1.3 and 1.2 at most).
fn versions_of(
    suites: &[rustls::SupportedCipherSuite],
) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut out = Vec::new();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        if suites.iter().any(|s| s.version() == version) {
            out.push(version);
        }
    }
    out
}

/// Builds a server config from the files named in `config`.
fn build(config: &SecurityConfig) -> Result<ServerConfig, TlsError> {
    let cert_path = config
        .ssl_certificate_file
        .as_deref()
        .ok_or(TlsError::Missing("ssl-certificate-file"))?;
    let key_path = config
        .ssl_key_file
        .as_deref()
        .ok_or(TlsError::Missing("ssl-key-file"))?;
    let certs = load_certs(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_err(key_path, e))?;
    let suites = cipher_suites(&config.ssl_cipher_suites)?;
    let versions = versions_of(&suites);
    let provider = provider_with(suites);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match config.ssl_client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        mode => {
            let ca_path = config
                .ssl_client_ca_file
                .as_deref()
                .ok_or(TlsError::Missing("ssl-client-ca-file for ssl-client-auth"))?;
            let mut roots = RootCertStore::empty();
            for ca in load_certs(ca_path)? {
                roots.add(ca).map_err(|e| file_err(ca_path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| file_err(ca_path, e))?)
        }
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .map_err(|e| file_err(key_path, format!("certificate and key: {e}")))?;
    // The broker's order decides (DEFAULT_CIPHER_SUITES or ssl-cipher-suites), not the
    // client's, which for OpenSSL puts AES-256 first.
    server.ignore_client_order = true;
    Ok(server)
}

/// A client config for connections from this broker to another (inter-broker TLS): the peers'
/// certificates checked against `ca_file`, and this broker's own certificate and key offered
/// when the peer asks for one (mTLS), as Kafka uses one keystore for both sides. Same versions
/// and suites as the server side.
pub fn client_config(
    ca_file: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in load_certs(ca_file)? {
        roots.add(ca).map_err(|e| file_err(ca_file, e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_path, key_path)) => {
            let certs = load_certs(cert_path)?;
            let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_err(key_path, e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| file_err(key_path, format!("certificate and key: {e}")))
        }
    }
}

/// The broker's TLS settings, reloadable.
pub struct TlsContext {
    /// The settings it was loaded from (for [`TlsContext::reload_files`]).
    config: SecurityConfig,
    current: RwLock<Arc<ServerConfig>>,
    /// Watched files and their modification times at the last load.
    watched: Mutex<Vec<(PathBuf, Option<SystemTime>)>>,
}

impl TlsContext {
    pub fn load(config: &SecurityConfig) -> Result<Self, TlsError> {
        let server = build(config)?;
        Ok(Self {
            config: config.clone(),
            current: RwLock::new(Arc::new(server)),
            watched: Mutex::new(watched(config)),
        })
    }

    /// The config new handshakes use.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.read().clone())
    }

    /// Re-reads the files; on error the current config stays.
    pub fn reload(&self, config: &SecurityConfig) -> Result<bool, TlsError> {
        let before = watched(config);
        let server = build(config)?;
        *self.current.write() = Arc::new(server);
        *self.watched.lock() = before;
        Ok(true)
    }

    /// Re-reads the files it was loaded from; on error the current config stays.
    pub fn reload_files(&self) -> Result<bool, TlsError> {
        self.reload(&self.config.clone())
    }

    /// Whether a watched file's modification time differs from the last load.
    pub fn files_changed(&self) -> bool {
        self.watched
            .lock()
            .iter()
            .any(|(path, seen)| mtime(path) != *seen)
    }
}

fn watched(config: &SecurityConfig) -> Vec<(PathBuf, Option<SystemTime>)> {
    [
        &config.ssl_certificate_file,
        &config.ssl_key_file,
        &config.ssl_client_ca_file,
    ]
    .into_iter()
    .flatten()
    .map(|p| (p.clone(), mtime(p)))
    .collect()
}
