//! Share sessions (KIP-932): the partitions a share consumer fetches from, kept by the broker so
//! that each ShareFetch names only what changed. Pure; time is passed in.
//!
//! A session is keyed by (group, member). Epoch 0 opens one (replacing any the member had), -1
//! closes it, anything else must be the epoch after the previous request's (wrapping from
//! `i32::MAX` to 1). The number of sessions and the partitions of one session are bounded; when
//! the cache is full, a session idle for longer than the eviction time makes room.

use std::collections::{BTreeSet, HashMap};

use crate::consumer_groups::TopicId;
use crate::errors::ErrorCode;

/// ShareFetch/ShareAcknowledge epoch that opens a session.
pub const INITIAL_EPOCH: i32 = 0;
/// Epoch that closes a session.
pub const FINAL_EPOCH: i32 = -1;
/// Most partitions one session tracks.
pub const MAX_PARTITIONS_PER_SESSION: usize = 10_000;

/// A topic partition by topic id.
pub type SharePartitionKey = (TopicId, i32);

#[derive(Clone, Debug)]
struct Session {
    next_epoch: i32,
    partitions: BTreeSet<SharePartitionKey>,
    last_used_ms: i64,
}

/// Every share session of this broker.
#[derive(Debug)]
pub struct ShareSessions {
    sessions: HashMap<(String, String), Session>,
    max_sessions: usize,
    /// A session unused for this long may be evicted to make room.
    evict_idle_ms: i64,
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl ShareSessions {
    pub fn new(max_sessions: usize, evict_idle_ms: i64) -> Self {
        Self {
            sessions: HashMap::new(),
            max_sessions,
            evict_idle_ms,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Opens (or reopens) the session of `(group, member)` with `partitions`.
    pub fn open(
        &mut self,
        group: &str,
        member: &str,
        partitions: impl IntoIterator<Item = SharePartitionKey>,
        now_ms: i64,
    ) -> Result<Vec<SharePartitionKey>, ErrorCode> {
        let key = (group.to_string(), member.to_string());
        if !self.sessions.contains_key(&key) && self.sessions.len() >= self.max_sessions {
            let idle_since = now_ms.saturating_sub(self.evict_idle_ms);
            let victim = self
                .sessions
                .iter()
                .filter(|(_, s)| s.last_used_ms <= idle_since)
                .min_by_key(|(_, s)| s.last_used_ms)
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.sessions.remove(&k);
                }
                None => return Err(ErrorCode::SHARE_SESSION_LIMIT_REACHED),
            }
        }
        let partitions: BTreeSet<SharePartitionKey> = partitions.into_iter().collect();
        if partitions.len() > MAX_PARTITIONS_PER_SESSION {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        let list = partitions.iter().copied().collect();
        self.sessions.insert(
            key,
            Session {
                next_epoch: next_epoch(INITIAL_EPOCH),
                partitions,
                last_used_ms: now_ms,
            },
        );
        Ok(list)
    }

    /// The next request of an open session: checks `epoch`, adds `added` and removes
    /// `forgotten`, and returns the session's partitions.
    pub fn advance(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        added: impl IntoIterator<Item = SharePartitionKey>,
        forgotten: &[SharePartitionKey],
        now_ms: i64,
    ) -> Result<Vec<SharePartitionKey>, ErrorCode> {
        let session = self.check(group, member, epoch)?;
        let mut partitions = session.partitions.clone();
        partitions.extend(added);
        for f in forgotten {
            partitions.remove(f);
        }
        if partitions.len() > MAX_PARTITIONS_PER_SESSION {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        session.partitions = partitions;
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        Ok(session.partitions.iter().copied().collect())
    }

    fn check(&mut self, group: &str, member: &str, epoch: i32) -> Result<&mut Session, ErrorCode> {
        let session = self
            .sessions
            .get_mut(&(group.to_string(), member.to_string()))
            .ok_or(ErrorCode::SHARE_SESSION_NOT_FOUND)?;
        if epoch != session.next_epoch {
            return Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH);
        }
        Ok(session)
    }

    /// Closes the session of `(group, member)` (a request with the final epoch).
    pub fn close(&mut self, group: &str, member: &str) -> Result<(), ErrorCode> {
        self.sessions
            .remove(&(group.to_string(), member.to_string()))
            .map(|_| ())
            .ok_or(ErrorCode::SHARE_SESSION_NOT_FOUND)
    }

    /// Whether `(group, member)` has a session.
    pub fn exists(&self, group: &str, member: &str) -> bool {
        self.sessions
            .contains_key(&(group.to_string(), member.to_string()))
    }

    /// Drops the session of a member that left its group.
    pub fn remove_member(&mut self, group: &str, member: &str) {
        self.sessions
            .remove(&(group.to_string(), member.to_string()));
    }

    /// Drops every session of a group.
    pub fn remove_group(&mut self, group: &str) {
        self.sessions.retain(|(g, _), _| g != group);
    }

    pub fn clear(&mut self) {
        self.sessions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TopicId = [7; 16];

    #[test]
    fn epochs_follow_each_other_and_sessions_close() {
        let mut s = ShareSessions::new(2, 1_000);
        assert_eq!(s.open("g", "m", [(T, 0)], 0), Ok(vec![(T, 0)]));
        assert_eq!(
            s.advance("g", "m", 2, [], &[], 0),
            Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH)
        );
        assert_eq!(
            s.advance("g", "m", 1, [(T, 1)], &[(T, 0)], 0),
            Ok(vec![(T, 1)])
        );
        assert_eq!(
            s.advance("g", "x", 2, [], &[], 0),
            Err(ErrorCode::SHARE_SESSION_NOT_FOUND)
        );
        assert_eq!(s.advance("g", "m", 2, [], &[], 0), Ok(vec![(T, 1)]));
        assert_eq!(s.close("g", "m"), Ok(()));
        assert_eq!(s.close("g", "m"), Err(ErrorCode::SHARE_SESSION_NOT_FOUND));
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_idle_sessions() {
        let mut s = ShareSessions::new(2, 1_000);
        s.open("g", "a", [], 0).expect("open");
        s.open("g", "b", [], 500).expect("open");
        assert_eq!(
            s.open("g", "c", [], 900),
            Err(ErrorCode::SHARE_SESSION_LIMIT_REACHED)
        );
        assert!(
            s.open("g", "c", [], 1_000).is_ok(),
            "a was idle long enough"
        );
        assert!(!s.exists("g", "a"));
        assert_eq!(s.len(), 2);
    }
}
