//! Incremental fetch sessions (KIP-227).
//!
//! A session remembers which partitions a consumer fetches and at what offset, so later fetches send
//! only changes and get back only partitions with something new. This module owns session bookkeeping
//! only: which partitions a fetch covers, in which order they are read, and which of them a response
//! must include. Reading the logs is the fetch handler's job.
//!
//! Order matters because a response stops taking data at its byte limit: a full fetch reads the
//! partitions in the order the request lists them; within a session, a partition that returned
//! data moves to the end of the order, so the next fetch reads the others first and one busy
//! partition cannot starve the rest (Kafka's fetch sessions do the same).

use std::collections::{BTreeMap, HashMap};

use crate::errors::ErrorCode;

/// Bound on live sessions; the least recently used is evicted beyond it.
pub const MAX_FETCH_SESSIONS: usize = 1_000;

/// A topic as a fetch names it: by name (Fetch v12 and older) or by id (v13+, KIP-516). A
/// session keeps what the client said; the fetch handler resolves an id on every read, so a
/// topic deleted and created again under the same name is not what an old id fetches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FetchedTopic {
    Name(String),
    Id([u8; 16]),
}

impl From<&str> for FetchedTopic {
    fn from(name: &str) -> Self {
        FetchedTopic::Name(name.to_owned())
    }
}

/// How a fetch request names its topics; a session keeps the naming it was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicNaming {
    ByName,
    ById,
}

pub type PartitionKey = (FetchedTopic, i32);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPartition {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    /// What the last response told the client, to decide whether it must hear about this partition again.
    pub last_high_watermark: i64,
    pub last_log_start_offset: i64,
    pub last_stable_offset: i64,
    /// Position in the session's read order (lower first).
    pub rank: u64,
}

#[derive(Debug)]
struct Session {
    next_epoch: i32,
    naming: TopicNaming,
    partitions: BTreeMap<PartitionKey, SessionPartition>,
    last_used_ms: i64,
    /// The rank the next partition added or moved to the end gets.
    next_rank: u64,
}

impl Session {
    /// The partitions in read order.
    fn listed(&self) -> Vec<(PartitionKey, SessionPartition)> {
        let mut listed: Vec<_> = self
            .partitions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        listed.sort_by_key(|(_, p)| p.rank);
        listed
    }
}

#[derive(Debug, Default)]
pub struct FetchSessions {
    sessions: HashMap<i32, Session>,
    next_id: i32,
}

/// What a fetch request resolves to after session handling.
#[derive(Debug)]
pub struct ResolvedFetch {
    /// 0 when the fetch is sessionless.
    pub session_id: i32,
    pub incremental: bool,
    pub partitions: Vec<(PartitionKey, SessionPartition)>,
}

/// The offsets a fetch response tells the client about a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentOffsets {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

impl SentOffsets {
    /// Offsets with the last stable offset at the high watermark (no open transaction).
    pub fn at(high_watermark: i64, log_start_offset: i64) -> Self {
        Self {
            high_watermark,
            last_stable_offset: high_watermark,
            log_start_offset,
        }
    }
}

/// One partition as listed in a fetch request.
pub struct RequestedPartition {
    pub key: PartitionKey,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    /// The leader epoch the client knows (-1: unknown). Checked by this request's read only: a
    /// session does not keep it.
    pub current_leader_epoch: i32,
}

impl FetchSessions {
    fn new_id(&mut self) -> i32 {
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if self.next_id > 0 && !self.sessions.contains_key(&self.next_id) {
                return self.next_id;
            }
        }
    }

    fn evict_if_full(&mut self) {
        if self.sessions.len() >= MAX_FETCH_SESSIONS {
            if let Some((&oldest, _)) = self.sessions.iter().min_by_key(|(_, s)| s.last_used_ms) {
                self.sessions.remove(&oldest);
            }
        }
    }

    /// Applies a fetch request's session fields; Err is the top-level error for the response.
    /// An incremental fetch must name topics as the session's first fetch did
    /// (FETCH_SESSION_TOPIC_ID_ERROR otherwise, as Kafka answers a client that changed Fetch
    /// version across v13 within a session).
    pub fn resolve(
        &mut self,
        session_id: i32,
        epoch: i32,
        naming: TopicNaming,
        requested: &[RequestedPartition],
        forgotten: &[PartitionKey],
        now_ms: i64,
    ) -> Result<ResolvedFetch, ErrorCode> {
        let fresh = |r: &RequestedPartition, rank: u64| SessionPartition {
            fetch_offset: r.fetch_offset,
            partition_max_bytes: r.partition_max_bytes,
            last_high_watermark: -1,
            last_log_start_offset: -1,
            last_stable_offset: -1,
            rank,
        };
        if epoch == -1 {
            // Sessionless full fetch; also closes `session_id` if the client names one.
            self.sessions.remove(&session_id);
            let partitions = requested
                .iter()
                .zip(0..)
                .map(|(r, rank)| (r.key.clone(), fresh(r, rank)))
                .collect();
            return Ok(ResolvedFetch {
                session_id: 0,
                incremental: false,
                partitions,
            });
        }
        if epoch == 0 {
            // Full fetch that opens a new session.
            self.sessions.remove(&session_id);
            self.evict_if_full();
            let id = self.new_id();
            let partitions: BTreeMap<_, _> = requested
                .iter()
                .zip(0..)
                .map(|(r, rank)| (r.key.clone(), fresh(r, rank)))
                .collect();
            let session = Session {
                next_epoch: 1,
                naming,
                next_rank: partitions.len() as u64,
                partitions,
                last_used_ms: now_ms,
            };
            let listed = session.listed();
            self.sessions.insert(id, session);
            return Ok(ResolvedFetch {
                session_id: id,
                incremental: false,
                partitions: listed,
            });
        }
        let session = self
            .sessions
            .get_mut(&session_id)
            .ok_or(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)?;
        if session.naming != naming {
            return Err(ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR);
        }
        if session.next_epoch != epoch {
            return Err(ErrorCode::INVALID_FETCH_SESSION_EPOCH);
        }
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.last_used_ms = now_ms;
        for key in forgotten {
            session.partitions.remove(key);
        }
        for r in requested {
            let rank = session.next_rank;
            let entry = session
                .partitions
                .entry(r.key.clone())
                .or_insert_with(|| fresh(r, rank));
            if entry.rank == rank {
                session.next_rank += 1;
            }
            entry.fetch_offset = r.fetch_offset;
            entry.partition_max_bytes = r.partition_max_bytes;
        }
        let partitions = session.listed();
        Ok(ResolvedFetch {
            session_id,
            incremental: true,
            partitions,
        })
    }

    /// Records what a response told the client about a partition. Returns whether an incremental
    /// response must include it (new data, an error, or changed offsets: high watermark, last
    /// stable offset, log start). A partition that got records moves to the end of the session's
    /// read order.
    pub fn note_sent(
        &mut self,
        session_id: i32,
        key: &PartitionKey,
        offsets: SentOffsets,
        has_records: bool,
        has_error: bool,
    ) -> bool {
        let SentOffsets {
            high_watermark,
            last_stable_offset,
            log_start_offset,
        } = offsets;
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return true;
        };
        let Some(p) = session.partitions.get_mut(key) else {
            return true;
        };
        let changed = p.last_high_watermark != high_watermark
            || p.last_log_start_offset != log_start_offset
            || p.last_stable_offset != last_stable_offset;
        p.last_high_watermark = high_watermark;
        p.last_log_start_offset = log_start_offset;
        p.last_stable_offset = last_stable_offset;
        if has_records {
            p.rank = session.next_rank;
            session.next_rank += 1;
        }
        changed || has_records || has_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(topic: &str, p: i32, offset: i64) -> RequestedPartition {
        RequestedPartition {
            key: (topic.into(), p),
            fetch_offset: offset,
            partition_max_bytes: 1 << 20,
            current_leader_epoch: -1,
        }
    }

    #[test]
    fn session_lifecycle() {
        let mut s = FetchSessions::default();
        let full = s
            .resolve(
                0,
                0,
                TopicNaming::ByName,
                &[req("t", 0, 0), req("t", 1, 0)],
                &[],
                0,
            )
            .expect("new session");
        assert!(full.session_id > 0);
        assert_eq!(full.partitions.len(), 2);
        let id = full.session_id;
        // Incremental: updates one partition's offset, keeps the other.
        let inc = s
            .resolve(id, 1, TopicNaming::ByName, &[req("t", 1, 5)], &[], 1)
            .expect("incremental");
        assert!(inc.incremental);
        assert_eq!(inc.partitions.len(), 2);
        assert_eq!(inc.partitions[1].1.fetch_offset, 5);
        // Wrong epoch.
        assert_eq!(
            s.resolve(id, 1, TopicNaming::ByName, &[], &[], 2).err(),
            Some(ErrorCode::INVALID_FETCH_SESSION_EPOCH)
        );
        // Forget one.
        let inc = s
            .resolve(id, 2, TopicNaming::ByName, &[], &[("t".into(), 0)], 3)
            .expect("forget");
        assert_eq!(inc.partitions.len(), 1);
        assert_eq!(
            s.resolve(999, 1, TopicNaming::ByName, &[], &[], 4).err(),
            Some(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)
        );
    }

    #[test]
    fn incremental_includes_only_changes() {
        let mut s = FetchSessions::default();
        let id = s
            .resolve(0, 0, TopicNaming::ByName, &[req("t", 0, 0)], &[], 0)
            .expect("session")
            .session_id;
        let key: PartitionKey = ("t".into(), 0);
        assert!(s.note_sent(id, &key, SentOffsets::at(10, 0), false, false));
        assert!(!s.note_sent(id, &key, SentOffsets::at(10, 0), false, false));
        assert!(s.note_sent(id, &key, SentOffsets::at(11, 0), false, false));
        // The last stable offset moving (a transaction ended) is a change too.
        let lso_moved = SentOffsets {
            last_stable_offset: 9,
            ..SentOffsets::at(11, 0)
        };
        assert!(s.note_sent(id, &key, lso_moved, false, false));
        assert!(!s.note_sent(id, &key, lso_moved, false, false));
    }

    #[test]
    fn partitions_are_read_in_request_order_then_those_that_returned_data_go_last() {
        let mut s = FetchSessions::default();
        let keys =
            |r: &ResolvedFetch| -> Vec<i32> { r.partitions.iter().map(|(k, _)| k.1).collect() };
        let full = s
            .resolve(
                0,
                0,
                TopicNaming::ByName,
                &[req("t", 2, 0), req("t", 0, 0), req("t", 1, 0)],
                &[],
                0,
            )
            .expect("session");
        assert_eq!(keys(&full), vec![2, 0, 1]);
        let id = full.session_id;
        // Partition 2 returned data, partition 0 only an offset change.
        s.note_sent(id, &("t".into(), 2), SentOffsets::at(5, 0), true, false);
        s.note_sent(id, &("t".into(), 0), SentOffsets::at(5, 0), false, false);
        let inc = s
            .resolve(id, 1, TopicNaming::ByName, &[req("t", 3, 0)], &[], 1)
            .expect("inc");
        assert_eq!(keys(&inc), vec![0, 1, 2, 3]);
        s.note_sent(id, &("t".into(), 0), SentOffsets::at(6, 0), true, false);
        let inc = s
            .resolve(id, 2, TopicNaming::ByName, &[], &[], 2)
            .expect("inc");
        assert_eq!(keys(&inc), vec![1, 2, 3, 0]);
    }

    #[test]
    fn a_session_names_topics_one_way_throughout() {
        let mut s = FetchSessions::default();
        let by_id = |id: u8, p: i32| RequestedPartition {
            key: (FetchedTopic::Id([id; 16]), p),
            fetch_offset: 0,
            partition_max_bytes: 1 << 20,
            current_leader_epoch: -1,
        };
        let full = s
            .resolve(0, 0, TopicNaming::ById, &[by_id(1, 0), by_id(2, 0)], &[], 0)
            .expect("session by id");
        let id = full.session_id;
        // A v12 fetch (by name) in a session opened by ids is refused, and does not use up
        // the epoch.
        assert_eq!(
            s.resolve(id, 1, TopicNaming::ByName, &[req("t", 0, 0)], &[], 1)
                .err(),
            Some(ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR)
        );
        let inc = s
            .resolve(
                id,
                1,
                TopicNaming::ById,
                &[],
                &[(FetchedTopic::Id([1; 16]), 0)],
                2,
            )
            .expect("incremental by id");
        assert_eq!(
            inc.partitions
                .iter()
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>(),
            vec![(FetchedTopic::Id([2; 16]), 0)]
        );
        // And the other way round.
        let named = s
            .resolve(0, 0, TopicNaming::ByName, &[req("t", 0, 0)], &[], 3)
            .expect("session by name")
            .session_id;
        assert_eq!(
            s.resolve(named, 1, TopicNaming::ById, &[], &[], 4).err(),
            Some(ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR)
        );
    }

    #[test]
    fn session_count_is_bounded() {
        let mut s = FetchSessions::default();
        for i in 0..(MAX_FETCH_SESSIONS + 10) {
            s.resolve(0, 0, TopicNaming::ByName, &[req("t", 0, 0)], &[], i as i64)
                .expect("session");
        }
        assert!(s.sessions.len() <= MAX_FETCH_SESSIONS);
    }
}
