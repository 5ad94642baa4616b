//! The leader-epoch cache: for each leader epoch present in a log, the offset of its first batch.
//!
//! This is Kafka's `leader-epoch-checkpoint` as a value: it answers "where does epoch E end in this
//! log?" (OffsetForLeaderEpoch, KIP-101/KIP-320) and is how replicas find where their logs diverge.
//! Pure data; whoever owns the log keeps it in step with appends and truncations and persists it.

use crate::{Epoch, Offset};

/// `(epoch, start_offset)` pairs, both strictly increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(Epoch, Offset)>,
}

/// What a log holds for a requested epoch: the largest epoch `<=` the one asked about and the
/// offset where it ends (the next epoch's start, or the log end offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    pub epoch: Epoch,
    pub end_offset: Offset,
}

/// Why a cache could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt epoch cache: {0}")]
pub struct CorruptEpochCache(pub &'static str);

impl EpochCache {
    /// A cache from persisted entries; they must be strictly increasing in both fields.
    pub fn from_entries(entries: Vec<(Epoch, Offset)>) -> Result<Self, CorruptEpochCache> {
        let increasing = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        if !increasing {
            return Err(CorruptEpochCache("entries not strictly increasing"));
        }
        if entries.iter().any(|&(e, o)| e < 0 || o < 0) {
            return Err(CorruptEpochCache("negative epoch or offset"));
        }
        Ok(Self { entries })
    }

    pub fn entries(&self) -> &[(Epoch, Offset)] {
        &self.entries
    }

    /// The epoch of the last batch in the log, if any epoch is known.
    pub fn last_epoch(&self) -> Option<Epoch> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Records that a batch of `epoch` was appended at `offset`. Only a new, larger epoch adds an
    /// entry; a batch of the current last epoch changes nothing.
    ///
    /// # Panics
    /// If `epoch` is smaller than the last epoch or `offset` is not past the last start: appends
    /// come in log order, so this is a caller bug.
    pub fn assign(&mut self, epoch: Epoch, offset: Offset) {
        match self.entries.last() {
            Some(&(last, _)) if epoch == last => {}
            Some(&(last, start)) => {
                assert!(
                    epoch > last && offset > start,
                    "epoch cache: epoch {epoch} at {offset} after epoch {last} at {start}"
                );
                self.entries.push((epoch, offset));
            }
            None => self.entries.push((epoch, offset)),
        }
    }

    /// The log was truncated to `end_offset` (everything at or above it removed).
    pub fn truncate_from_end(&mut self, end_offset: Offset) {
        self.entries.retain(|&(_, start)| start < end_offset);
    }

    /// The log start moved to `start_offset` (everything below it removed). The epoch that covers
    /// the new start keeps an entry, moved up to the new start.
    pub fn truncate_from_start(&mut self, start_offset: Offset) {
        let covering = self
            .entries
            .iter()
            .rposition(|&(_, start)| start <= start_offset);
        if let Some(i) = covering {
            self.entries.drain(..i);
            self.entries[0].1 = start_offset;
        }
    }

    /// Where `epoch` ends in a log whose end offset is `log_end`: the largest known epoch `<=
    /// epoch` and the start of the epoch after it (or `log_end`). `None` when `epoch` is below
    /// every known epoch (Kafka answers UNDEFINED_EPOCH / UNDEFINED_OFFSET then).
    pub fn end_offset_for(&self, epoch: Epoch, log_end: Offset) -> Option<EpochEnd> {
        let i = self.entries.partition_point(|&(e, _)| e <= epoch);
        if i == 0 {
            return None;
        }
        let found = self.entries[i - 1].0;
        let end_offset = self.entries.get(i).map_or(log_end, |&(_, start)| start);
        Some(EpochEnd {
            epoch: found,
            end_offset,
        })
    }

    /// The epoch of the batch holding `offset`, if the cache covers it.
    pub fn epoch_at(&self, offset: Offset) -> Option<Epoch> {
        let i = self.entries.partition_point(|&(_, start)| start <= offset);
        (i > 0).then(|| self.entries[i - 1].0)
    }

    /// The first offset of `epoch`, if the log has a batch of it.
    pub fn start_of(&self, epoch: Epoch) -> Option<Offset> {
        self.entries
            .iter()
            .find(|&&(e, _)| e == epoch)
            .map(|&(_, s)| s)
    }

    /// A compact text form (`epoch offset` per line), Kafka's checkpoint layout minus the header.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.entries.len() * 16);
        for (e, o) in &self.entries {
            out.push_str(&format!("{e} {o}\n"));
        }
        out
    }

    /// Parses [`Self::encode`]'s output.
    pub fn decode(text: &str) -> Result<Self, CorruptEpochCache> {
        let mut entries = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(e), Some(o), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(CorruptEpochCache("line is not `epoch offset`"));
            };
            let e = e.parse().map_err(|_| CorruptEpochCache("bad epoch"))?;
            let o = o.parse().map_err(|_| CorruptEpochCache("bad offset"))?;
            entries.push((e, o));
        }
        Self::from_entries(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(Epoch, Offset)]) -> EpochCache {
        EpochCache::from_entries(entries.to_vec()).expect("valid")
    }

    #[test]
    fn end_offset_for_finds_largest_epoch_at_or_below() {
        let c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(c.end_offset_for(0, 30), None);
        assert_eq!(
            c.end_offset_for(1, 30),
            Some(EpochEnd {
                epoch: 1,
                end_offset: 10
            })
        );
        assert_eq!(
            c.end_offset_for(2, 30),
            Some(EpochEnd {
                epoch: 1,
                end_offset: 10
            })
        );
        assert_eq!(
            c.end_offset_for(4, 30),
            Some(EpochEnd {
                epoch: 4,
                end_offset: 30
            })
        );
        assert_eq!(
            c.end_offset_for(9, 30),
            Some(EpochEnd {
                epoch: 4,
                end_offset: 30
            })
        );
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (3, 10), (4, 25)]);
        c.truncate_from_end(25);
        assert_eq!(c.entries(), &[(1, 0), (3, 10)]);
        c.truncate_from_start(12);
        assert_eq!(c.entries(), &[(3, 12)]);
        c.assign(5, 20);
        assert_eq!(c.epoch_at(19), Some(3));
        assert_eq!(c.epoch_at(20), Some(5));
        assert_eq!(c.epoch_at(11), None);
    }

    #[test]
    fn encode_round_trips_and_rejects_garbage() {
        let c = cache(&[(1, 0), (3, 10)]);
        assert_eq!(EpochCache::decode(&c.encode()), Ok(c));
        assert!(EpochCache::decode("3 10\n1 0\n").is_err());
        assert!(EpochCache::decode("x y\n").is_err());
        assert!(EpochCache::decode("1 2 3\n").is_err());
    }
}
