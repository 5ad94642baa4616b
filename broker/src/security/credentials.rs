//! Where SCRAM credentials are kept: the [`CredentialStore`] trait and its two implementations.
//! A single node keeps a JSON file in the data directory (`__weir_meta/scram_credentials.json`,
//! replaced atomically on every change). A cluster keeps them in etcd (`scram/<user>`), so a
//! user created through any broker can authenticate on every one, as in Kafka; a cluster broker's
//! own file holds only bootstrap users (written by `weir user create --data-dir` while it is
//! stopped), moved into etcd when it starts. Nothing outside this module assumes one or the other.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;

use super::scram::{ScramCredential, ScramMechanism};
use crate::cluster::store::{EtcdStore, StoreError};

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
    #[error("cluster metadata: {0}")]
    Cluster(#[from] StoreError),
    #[error("the change was written but has not reached this broker yet")]
    NotApplied,
}

/// What [`CredentialStore::apply`] returns.
pub type ApplyFuture = Pin<Box<dyn Future<Output = Result<(), CredentialError>> + Send>>;

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
    /// Applies `changes` all at once (all are kept, or none on error), durably, before the
    /// future resolves. Deleting a credential that does not exist is not an error here (the
    /// caller checks first).
    fn apply(self: Arc<Self>, changes: Vec<CredentialChange>) -> ApplyFuture;
}

type Users = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// The credentials of every user `changes` name, as they are after the changes (empty: the
/// user has none left), starting from `current`. Changes apply in order.
fn changed_users(current: &Users, changes: &[CredentialChange]) -> Users {
    let mut out = Users::new();
    for change in changes {
        let user = match change {
            CredentialChange::Upsert { user, .. } | CredentialChange::Delete { user, .. } => user,
        };
        let creds = out
            .entry(user.clone())
            .or_insert_with(|| current.get(user).cloned().unwrap_or_default());
        match change {
            CredentialChange::Upsert {
                mechanism,
                credential,
                ..
            } => {
                creds.insert(*mechanism, credential.clone());
            }
            CredentialChange::Delete { mechanism, .. } => {
                creds.remove(mechanism);
            }
        }
    }
    out
}

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

impl LocalCredentialStore {
    /// [`CredentialStore::apply`], blocking (for the CLI on a stopped broker's data directory).
    pub fn apply_now(&self, changes: &[CredentialChange]) -> Result<(), CredentialError> {
        let mut users = self.users.lock();
        let mut next = users.clone();
        for (user, creds) in changed_users(&users, changes) {
            if creds.is_empty() {
                next.remove(&user);
            } else {
                next.insert(user, creds);
            }
        }
        if next.len() > MAX_USERS && next.len() > users.len() {
            return Err(CredentialError::TooManyUsers);
        }
        self.persist(&next)?;
        *users = next;
        Ok(())
    }

    fn all(&self) -> Users {
        self.users.lock().clone()
    }
}

fn listing(users: &Users) -> Vec<(String, Vec<(ScramMechanism, u32)>)> {
    users
        .iter()
        .map(|(u, creds)| {
            (
                u.clone(),
                creds.iter().map(|(m, c)| (*m, c.iterations)).collect(),
            )
        })
        .collect()
}

impl CredentialStore for LocalCredentialStore {
    fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.users.lock().get(user)?.get(&mechanism).cloned()
    }

    fn list(&self) -> Vec<(String, Vec<(ScramMechanism, u32)>)> {
        listing(&self.users.lock())
    }

    fn apply(self: Arc<Self>, changes: Vec<CredentialChange>) -> ApplyFuture {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || self.apply_now(&changes))
                .await
                .unwrap_or(Err(CredentialError::TaskFailed))
        })
    }
}

/// How long AlterUserScramCredentials waits for its write to come back through the watch.
const APPLY_WAIT_MS: u64 = 5_000;

/// A cluster member's credentials: etcd's, every broker watching them. Users in the broker's
/// own file (bootstrap users) are moved into etcd by [`ClusterCredentialStore::open`] unless
/// etcd already has that user; until then (etcd unreachable at start) they are served from the
/// file.
pub struct ClusterCredentialStore {
    etcd: Arc<EtcdStore>,
    bootstrap: LocalCredentialStore,
}

impl ClusterCredentialStore {
    /// Opens the bootstrap file in `meta_dir`; [`Self::move_bootstrap_users`] empties it.
    pub fn open(etcd: Arc<EtcdStore>, meta_dir: &Path) -> Result<Self, CredentialError> {
        Ok(Self {
            etcd,
            bootstrap: LocalCredentialStore::open(meta_dir)?,
        })
    }

    /// Moves the bootstrap users into etcd (each only if etcd has no credentials for that user:
    /// the cluster's are kept) and removes them from the file.
    pub async fn move_bootstrap_users(&self) {
        let mut moved = Vec::new();
        let mut revision = 0;
        for (user, creds) in self.bootstrap.all() {
            match self.etcd.create_scram_user(&user, &creds).await {
                Ok((written_at, created)) => {
                    revision = revision.max(written_at);
                    tracing::info!(user = %user, created, "bootstrap SCRAM user moved into the cluster metadata (kept as it was there if it existed)");
                    moved.extend(creds.keys().map(|&mechanism| CredentialChange::Delete {
                        user: user.clone(),
                        mechanism,
                    }));
                }
                Err(e) => {
                    tracing::warn!(user = %user, error = %e, "cannot move a bootstrap SCRAM user into the cluster metadata yet; serving it from this broker's file");
                }
            }
        }
        // Served from the file until this broker's view has them.
        if !moved.is_empty() && self.etcd.wait_for_revision(revision, APPLY_WAIT_MS).await {
            if let Err(e) = self.bootstrap.apply_now(&moved) {
                tracing::warn!(error = %e, "cannot remove the moved bootstrap SCRAM users from this broker's file");
            }
        }
    }

    /// Every user's credentials as this broker sees them: etcd's, then the bootstrap file's for
    /// users etcd lacks.
    fn effective(&self) -> Users {
        let mut users = self.etcd.with_view(|v| (*v.scram).clone());
        for (user, creds) in self.bootstrap.all() {
            users.entry(user).or_insert(creds);
        }
        users
    }
}

impl CredentialStore for ClusterCredentialStore {
    fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        match self.etcd.with_view(|v| v.scram.get(user).cloned()) {
            Some(creds) => creds.get(&mechanism).cloned(),
            None => self.bootstrap.get(user, mechanism),
        }
    }

    fn list(&self) -> Vec<(String, Vec<(ScramMechanism, u32)>)> {
        listing(&self.effective())
    }

    fn apply(self: Arc<Self>, changes: Vec<CredentialChange>) -> ApplyFuture {
        Box::pin(async move {
            let current = self.effective();
            let next = changed_users(&current, &changes);
            let added = next
                .iter()
                .filter(|(u, c)| !c.is_empty() && !current.contains_key(*u))
                .count();
            if added > 0 && current.len() + added > MAX_USERS {
                return Err(CredentialError::TooManyUsers);
            }
            let revision = self.etcd.put_scram_users(&next).await?;
            // A deleted bootstrap user must not come back from this broker's file.
            let local: Vec<CredentialChange> = changes
                .iter()
                .filter(|c| matches!(c, CredentialChange::Delete { .. }))
                .cloned()
                .collect();
            if !local.is_empty() {
                let store = self.clone();
                tokio::task::spawn_blocking(move || store.bootstrap.apply_now(&local))
                    .await
                    .unwrap_or(Err(CredentialError::TaskFailed))?;
            }
            if self.etcd.wait_for_revision(revision, APPLY_WAIT_MS).await {
                Ok(())
            } else {
                Err(CredentialError::NotApplied)
            }
        })
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
            .apply_now(&[
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
            .apply_now(&[CredentialChange::Delete {
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
