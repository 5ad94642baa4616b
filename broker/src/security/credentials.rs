//! Where SCRAM credentials are kept: the [`CredentialStore`] trait and its single-node
//! implementation, a JSON file in the data directory (`__weir_meta/scram_credentials.json`,
//! replaced atomically on every change). A cluster keeps them elsewhere (etcd) behind the same
//! trait; nothing outside this module assumes one node.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::scram::{ScramCredential, ScramMechanism};

const FILE: &str = "scram_credentials.json";
/// Most users kept (each AlterUserScramCredentials call can add users: bound the file).
pub const MAX_USERS: usize = 100_000;
/// Longest user name accepted, in bytes.
pub const MAX_USER_NAME_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("credential store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credential store {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("at most {MAX_USERS} users can have credentials")]
    TooManyUsers,
    #[error("the credential store's task failed")]
    TaskFailed,
}

/// One change of an AlterUserScramCredentials call.
#[derive(Clone, Debug)]
pub enum CredentialChange {
    Upsert {
        user: String,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    },
    Delete {
        user: String,
        mechanism: ScramMechanism,
    },
}

/// SCRAM credentials by user and mechanism.
pub trait CredentialStore: Send + Sync {
    /// The credential of `user` for `mechanism`.
    fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
    /// Every user with at least one credential, with their mechanisms and iterations, by name.
    fn list(&self) -> Vec<(String, Vec<(ScramMechanism, u32)>)>;
    /// Applies `changes` all at once (all are kept, or none on error). Deleting a credential
    /// that does not exist is not an error here (the caller checks first).
    fn apply(&self, changes: &[CredentialChange]) -> Result<(), CredentialError>;
}

type Users = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// The single-node store: a JSON file in `__weir_meta/`, loaded at open and kept in memory.
pub struct LocalCredentialStore {
    path: PathBuf,
    users: Mutex<Users>,
}

impl LocalCredentialStore {
    pub fn open(meta_dir: &Path) -> Result<Self, CredentialError> {
        let path = meta_dir.join(FILE);
        let users = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CredentialError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Users::new(),
            Err(source) => return Err(CredentialError::Io { path, source }),
        };
        Ok(Self {
            path,
            users: Mutex::new(users),
        })
    }

    /// Replaces the file atomically: write a temporary file, fsync, rename, fsync the directory.
    fn persist(&self, users: &Users) -> Result<(), CredentialError> {
        let io = |source| CredentialError::Io {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(users)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }
}

impl CredentialStore for LocalCredentialStore {
    fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.users.lock().get(user)?.get(&mechanism).cloned()
    }

    fn list(&self) -> Vec<(String, Vec<(ScramMechanism, u32)>)> {
        self.users
            .lock()
            .iter()
            .map(|(u, creds)| {
                (
                    u.clone(),
                    creds.iter().map(|(m, c)| (*m, c.iterations)).collect(),
                )
            })
            .collect()
    }

    fn apply(&self, changes: &[CredentialChange]) -> Result<(), CredentialError> {
        let mut users = self.users.lock();
        let mut next = users.clone();
        for change in changes {
            match change {
                CredentialChange::Upsert {
                    user,
                    mechanism,
                    credential,
                } => {
                    next.entry(user.clone())
                        .or_default()
                        .insert(*mechanism, credential.clone());
                }
                CredentialChange::Delete { user, mechanism } => {
                    if let Some(creds) = next.get_mut(user) {
                        creds.remove(mechanism);
                        if creds.is_empty() {
                            next.remove(user);
                        }
                    }
                }
            }
        }
        if next.len() > MAX_USERS && next.len() > users.len() {
            return Err(CredentialError::TooManyUsers);
        }
        self.persist(&next)?;
        *users = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_a_reopen_and_hold_no_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalCredentialStore::open(dir.path()).expect("open");
        let cred = ScramMechanism::Sha256.credential("hunter2", 4096);
        store
            .apply(&[
                CredentialChange::Upsert {
                    user: "alice".into(),
                    mechanism: ScramMechanism::Sha256,
                    credential: cred.clone(),
                },
                CredentialChange::Upsert {
                    user: "bob".into(),
                    mechanism: ScramMechanism::Sha512,
                    credential: ScramMechanism::Sha512.credential("pw", 4096),
                },
            ])
            .expect("apply");
        store
            .apply(&[CredentialChange::Delete {
                user: "bob".into(),
                mechanism: ScramMechanism::Sha512,
            }])
            .expect("delete");
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("file");
        assert!(!text.contains("hunter2"));
        let reopened = LocalCredentialStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.get("alice", ScramMechanism::Sha256), Some(cred));
        assert_eq!(reopened.get("alice", ScramMechanism::Sha512), None);
        assert_eq!(
            reopened.list(),
            vec![("alice".to_string(), vec![(ScramMechanism::Sha256, 4096)])]
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), "{not json").expect("write");
        assert!(matches!(
            LocalCredentialStore::open(dir.path()),
            Err(CredentialError::Corrupt { .. })
        ));
    }
}
