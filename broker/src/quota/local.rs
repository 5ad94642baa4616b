//! The single-node quota store: a JSON file in the data directory (`__weir_meta/quotas.json`),
//! loaded at open, kept in memory, and replaced atomically on every change (temporary file,
//! fsync, rename, fsync of the directory), so a change that was answered survives `kill -9`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{validate_values, QuotaEntity, QuotaError, QuotaMap, QuotaRecord, QuotaValues};

pub const FILE: &str = "quotas.json";

#[derive(Debug, thiserror::Error)]
pub enum LocalQuotaError {
    #[error("quota file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("quota file {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// See the module docs.
pub struct LocalQuotaStore {
    path: PathBuf,
    quotas: Mutex<Arc<QuotaMap>>,
}

impl LocalQuotaStore {
    /// Opens (or starts empty) the store of the metadata directory `meta_dir`.
    pub fn open(meta_dir: &Path) -> Result<Self, LocalQuotaError> {
        let path = meta_dir.join(FILE);
        let quotas = match std::fs::read(&path) {
            Ok(bytes) => {
                let corrupt = |message: String| LocalQuotaError::Corrupt {
                    path: path.clone(),
                    message,
                };
                let list: Vec<QuotaRecord> =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                let mut map = QuotaMap::new();
                for r in list {
                    validate_values(&r.entity, &r.values)
                        .map_err(|e| corrupt(format!("{}: {e}", r.entity)))?;
                    map.insert(r.entity, r.values);
                }
                map
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QuotaMap::new(),
            Err(source) => return Err(LocalQuotaError::Io { path, source }),
        };
        Ok(Self {
            path,
            quotas: Mutex::new(Arc::new(quotas)),
        })
    }

    /// The quotas now (a new `Arc` after every change).
    pub fn current(&self) -> Arc<QuotaMap> {
        self.quotas.lock().clone()
    }

    /// Sets each entity's values (an entity left without values is removed), durably.
    pub fn put(&self, entries: Vec<(QuotaEntity, QuotaValues)>) -> Result<(), QuotaError> {
        let mut quotas = self.quotas.lock();
        let mut next = QuotaMap::clone(&quotas);
        for (e, values) in entries {
            if values.is_empty() {
                next.remove(&e);
            } else {
                next.insert(e, values);
            }
        }
        if next != **quotas {
            self.persist(&next)?;
            *quotas = Arc::new(next);
        }
        Ok(())
    }

    fn persist(&self, quotas: &QuotaMap) -> Result<(), LocalQuotaError> {
        let io = |source| LocalQuotaError::Io {
            path: self.path.clone(),
            source,
        };
        let list: Vec<QuotaRecord> = quotas
            .iter()
            .map(|(entity, values)| QuotaRecord {
                entity: entity.clone(),
                values: values.clone(),
            })
            .collect();
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
    use super::super::{EntityName, PRODUCER_BYTE_RATE};
    use super::*;

    #[test]
    fn values_survive_a_reopen_and_emptied_entities_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalQuotaStore::open(dir.path()).expect("open");
        let alice = QuotaEntity {
            user: Some(EntityName::Named("alice".into())),
            client_id: Some(EntityName::Default),
            ip: None,
        };
        let values = QuotaValues::from([(PRODUCER_BYTE_RATE.to_string(), 1024.0)]);
        store
            .put(vec![(alice.clone(), values.clone())])
            .expect("put");
        let reopened = LocalQuotaStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.current().get(&alice), Some(&values));
        reopened
            .put(vec![(alice.clone(), QuotaValues::new())])
            .expect("remove");
        assert!(LocalQuotaStore::open(dir.path())
            .expect("reopen")
            .current()
            .is_empty());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), b"[{\"entity\":").expect("write");
        assert!(matches!(
            LocalQuotaStore::open(dir.path()),
            Err(LocalQuotaError::Corrupt { .. })
        ));
    }
}
