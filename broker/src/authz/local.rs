//! The single-node ACL store: a JSON file in the data directory (`__weir_meta/acls.json`), loaded
//! at open, kept in memory, and replaced atomically on every change (temporary file, fsync,
//! rename, fsync of the directory), so a change that was answered survives `kill -9`. Also
//! read and written directly by `weir acl --data-dir` while the broker is stopped.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::acl::AclBinding;
use super::{acl_id, AclMap};

pub const FILE: &str = "acls.json";

#[derive(Debug, thiserror::Error)]
pub enum LocalAclError {
    #[error("ACL file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ACL file {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// See the module docs.
pub struct LocalAclStore {
    path: PathBuf,
    acls: Mutex<Arc<AclMap>>,
}

impl LocalAclStore {
    /// Opens (or starts empty) the store of the metadata directory `meta_dir`.
    pub fn open(meta_dir: &Path) -> Result<Self, LocalAclError> {
        let path = meta_dir.join(FILE);
        let acls = match std::fs::read(&path) {
            Ok(bytes) => {
                let list: Vec<AclBinding> =
                    serde_json::from_slice(&bytes).map_err(|e| LocalAclError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                let mut map = BTreeMap::new();
                for acl in list {
                    acl.validate().map_err(|message| LocalAclError::Corrupt {
                        path: path.clone(),
                        message: format!("{acl}: {message}"),
                    })?;
                    map.insert(acl_id(&acl), acl);
                }
                map
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(LocalAclError::Io { path, source }),
        };
        Ok(Self {
            path,
            acls: Mutex::new(Arc::new(acls)),
        })
    }

    /// The ACLs now (a new `Arc` after every change).
    pub fn current(&self) -> Arc<AclMap> {
        self.acls.lock().clone()
    }

    /// Applies `change` to a copy of the ACLs, makes the copy durable, then makes it current.
    /// Nothing changes if `change` or the write fails.
    pub fn update<R, E: From<LocalAclError>>(
        &self,
        change: impl FnOnce(&mut AclMap) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut acls = self.acls.lock();
        let mut next = AclMap::clone(&acls);
        let result = change(&mut next)?;
        if next != **acls {
            self.persist(&next)?;
            *acls = Arc::new(next);
        }
        Ok(result)
    }

    fn persist(&self, acls: &AclMap) -> Result<(), LocalAclError> {
        let io = |source| LocalAclError::Io {
            path: self.path.clone(),
            source,
        };
        let list: Vec<&AclBinding> = acls.values().collect();
        let bytes = serde_json::to_vec_pretty(&list)
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::acl::*;
    use super::*;

    fn read_acl(topic: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn changes_are_kept_across_a_reopen_and_failed_changes_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalAclStore::open(dir.path()).expect("open");
        let before = store.current();
        store
            .update(|m| {
                m.insert(acl_id(&read_acl("a")), read_acl("a"));
                Ok::<_, LocalAclError>(())
            })
            .expect("add");
        assert!(!Arc::ptr_eq(&before, &store.current()));
        let failed: Result<(), LocalAclError> = store.update(|m| {
            m.clear();
            Err(LocalAclError::Corrupt {
                path: PathBuf::new(),
                message: "refused".into(),
            })
        });
        assert!(failed.is_err());
        assert_eq!(store.current().len(), 1);
        let reopened = LocalAclStore::open(dir.path()).expect("reopen");
        let acls: Vec<AclBinding> = reopened.current().values().cloned().collect();
        assert_eq!(acls, vec![read_acl("a")]);
        assert!(!dir.path().join("acls.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), b"[{\"resource_type\":\"TOPIC\"").expect("write");
        assert!(matches!(
            LocalAclStore::open(dir.path()),
            Err(LocalAclError::Corrupt { .. })
        ));
    }
}
