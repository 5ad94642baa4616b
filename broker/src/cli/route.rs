//! How each request the CLI routes splits into requests for single brokers and how their answers
//! merge back: the keys (partitions, groups) a request names, the same request cut down to some
//! of them, and each key's part of a response. `client::Client` decides where the parts go and
//! which to send again.

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::*;

use super::client::expect_response;

/// What decides where a request goes: a partition (to its leader) or a group (to its
/// coordinator).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Partition(String, i32),
    Group(String),
}

/// A request the client splits by [`Key`].
pub trait Routed: Sized {
    /// The merged response.
    type Resp: Default;
    /// One key's part of a response.
    type Part;
    /// Whether the request may be sent again after a connection broke with it unanswered
    /// (reads, and writes that repeat to the same effect).
    const RESEND_SAFE: bool;
    /// Added to the error of a connection lost with a request that is not sent again.
    const LOST_HINT: &'static str = "the request may or may not have taken effect";

    fn keys(&self) -> Vec<Key>;
    /// The request for `keys` only.
    fn subset(&self, keys: &BTreeSet<Key>) -> Self;
    fn into_request(self) -> Request;
    fn from_response(r: Response) -> anyhow::Result<Self::Resp>;
    /// The response without its parts, and its parts; `sent` are the keys of the request.
    fn split(resp: Self::Resp, sent: &BTreeSet<Key>) -> (Self::Resp, Vec<(Key, Self::Part)>);
    /// The error code that decides whether the part's key is sent again.
    fn error(part: &Self::Part) -> ErrorCode;
    /// Two responses' top-level fields into one.
    fn combine(first: Self::Resp, _other: Self::Resp) -> Self::Resp {
        first
    }
    /// The response with `parts` put back.
    fn join(shell: Self::Resp, parts: BTreeMap<Key, Self::Part>) -> Self::Resp;
}

fn partition_key(topic: &str, index: i32) -> Key {
    Key::Partition(topic.to_string(), index)
}

fn has_partition(keys: &BTreeSet<Key>, topic: &str, index: i32) -> bool {
    keys.contains(&partition_key(topic, index))
}

/// A topic of a partition-routed request or response: a name and partitions, each with an index.
trait TopicEntry: Sized {
    type Partition: Clone;
    fn name(&self) -> &str;
    fn partitions(&self) -> &[Self::Partition];
    fn index(p: &Self::Partition) -> i32;
    fn new(name: String, partitions: Vec<Self::Partition>) -> Self;
    fn into_parts(self) -> (String, Vec<Self::Partition>);
}

macro_rules! topic_entry {
    ($($topic:ident { $part:ident . $index:ident }),* $(,)?) => {$(
        impl TopicEntry for $topic {
            type Partition = $part;
            fn name(&self) -> &str {
                &self.name
            }
            fn partitions(&self) -> &[$part] {
                &self.partitions
            }
            fn index(p: &$part) -> i32 {
                p.$index
            }
            // Topic ids (Produce and Fetch v13+) are left zero: the CLI names topics.
            #[allow(clippy::needless_update)]
            fn new(name: String, partitions: Vec<$part>) -> Self {
                $topic {
                    name,
                    partitions,
                    ..$topic::default()
                }
            }
            fn into_parts(self) -> (String, Vec<$part>) {
                (self.name, self.partitions)
            }
        }
    )*};
}

topic_entry! {
    ProduceTopic { ProducePartition.index },
    ProduceTopicResponse { ProducePartitionResponse.index },
    FetchTopic { FetchPartition.partition },
    FetchTopicResponse { FetchPartitionResponse.partition_index },
    ListOffsetsTopic { ListOffsetsPartition.partition_index },
    ListOffsetsTopicResponse { ListOffsetsPartitionResponse.partition_index },
}

/// The partitions `topics` name, as keys.
fn partition_keys<T: TopicEntry>(topics: &[T]) -> Vec<Key> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions()
                .iter()
                .map(|p| partition_key(t.name(), T::index(p)))
        })
        .collect()
}

/// `topics` cut down to the partitions in `keys` (topics left empty dropped).
fn topics_subset<T: TopicEntry>(topics: &[T], keys: &BTreeSet<Key>) -> Vec<T> {
    topics
        .iter()
        .filter_map(|t| {
            let kept: Vec<_> = t
                .partitions()
                .iter()
                .filter(|p| has_partition(keys, t.name(), T::index(p)))
                .cloned()
                .collect();
            (!kept.is_empty()).then(|| T::new(t.name().to_string(), kept))
        })
        .collect()
}

/// A response's topics as one part per partition.
fn topic_parts<T: TopicEntry>(topics: Vec<T>) -> Vec<(Key, T::Partition)> {
    topics
        .into_iter()
        .flat_map(|t| {
            let (name, partitions) = t.into_parts();
            partitions
                .into_iter()
                .map(move |p| (partition_key(&name, T::index(&p)), p))
        })
        .collect()
}

/// Partition parts (in key order) put back into topics.
fn join_topics<T: TopicEntry>(parts: BTreeMap<Key, T::Partition>) -> Vec<T> {
    let mut out: Vec<(String, Vec<T::Partition>)> = Vec::new();
    for (key, part) in parts {
        let Key::Partition(topic, _) = key else {
            continue;
        };
        match out.last_mut() {
            Some((t, ps)) if *t == topic => ps.push(part),
            _ => out.push((topic, vec![part])),
        }
    }
    out.into_iter()
        .map(|(name, partitions)| T::new(name, partitions))
        .collect()
}

/// Group parts in key order.
fn groups<P>(parts: BTreeMap<Key, P>) -> Vec<P> {
    parts.into_values().collect()
}

impl Routed for ProduceRequest {
    type Resp = ProduceResponse;
    type Part = ProducePartitionResponse;
    const RESEND_SAFE: bool = false;
    const LOST_HINT: &'static str = "the records sent on it may or may not have been written";

    fn keys(&self) -> Vec<Key> {
        partition_keys(&self.topics)
    }

    fn subset(&self, keys: &BTreeSet<Key>) -> Self {
        ProduceRequest {
            topics: topics_subset(&self.topics, keys),
            transactional_id: self.transactional_id.clone(),
            ..*self
        }
    }

    fn into_request(self) -> Request {
        Request::Produce(self)
    }

    fn from_response(r: Response) -> anyhow::Result<Self::Resp> {
        Ok(expect_response!(r, Produce))
    }

    fn split(resp: Self::Resp, _: &BTreeSet<Key>) -> (Self::Resp, Vec<(Key, Self::Part)>) {
        let shell = ProduceResponse {
            throttle_time_ms: resp.throttle_time_ms,
            ..ProduceResponse::default()
        };
        (shell, topic_parts(resp.topics))
    }

    fn error(part: &Self::Part) -> ErrorCode {
        part.error_code
    }

    fn join(mut shell: Self::Resp, parts: BTreeMap<Key, Self::Part>) -> Self::Resp {
        shell.topics = join_topics(parts);
        shell
    }
}

impl Routed for FetchRequest {
    type Resp = FetchResponse;
    type Part = FetchPartitionResponse;
    const RESEND_SAFE: bool = true;

    fn keys(&self) -> Vec<Key> {
        partition_keys(&self.topics)
    }

    fn subset(&self, keys: &BTreeSet<Key>) -> Self {
        FetchRequest {
            topics: topics_subset(&self.topics, keys),
            forgotten_topics: Vec::new(),
            ..self.clone()
        }
    }

    fn into_request(self) -> Request {
        Request::Fetch(self)
    }

    fn from_response(r: Response) -> anyhow::Result<Self::Resp> {
        Ok(expect_response!(r, Fetch))
    }

    fn split(mut resp: Self::Resp, _: &BTreeSet<Key>) -> (Self::Resp, Vec<(Key, Self::Part)>) {
        let parts = topic_parts(std::mem::take(&mut resp.topics));
        (resp, parts)
    }

    fn error(part: &Self::Part) -> ErrorCode {
        part.error_code
    }

    fn combine(first: Self::Resp, other: Self::Resp) -> Self::Resp {
        if first.error_code.is_none() {
            FetchResponse {
                error_code: other.error_code,
                ..first
            }
        } else {
            first
        }
    }

    fn join(mut shell: Self::Resp, parts: BTreeMap<Key, Self::Part>) -> Self::Resp {
        shell.topics = join_topics(parts);
        shell
    }
}

impl Routed for ListOffsetsRequest {
    type Resp = ListOffsetsResponse;
    type Part = ListOffsetsPartitionResponse;
    const RESEND_SAFE: bool = true;

    fn keys(&self) -> Vec<Key> {
        partition_keys(&self.topics)
    }

    fn subset(&self, keys: &BTreeSet<Key>) -> Self {
        ListOffsetsRequest {
            topics: topics_subset(&self.topics, keys),
            ..*self
        }
    }

    fn into_request(self) -> Request {
        Request::ListOffsets(self)
    }

    fn from_response(r: Response) -> anyhow::Result<Self::Resp> {
        Ok(expect_response!(r, ListOffsets))
    }

    fn split(mut resp: Self::Resp, _: &BTreeSet<Key>) -> (Self::Resp, Vec<(Key, Self::Part)>) {
        let parts = topic_parts(std::mem::take(&mut resp.topics));
        (resp, parts)
    }

    fn error(part: &Self::Part) -> ErrorCode {
        part.error_code
    }

    fn join(mut shell: Self::Resp, parts: BTreeMap<Key, Self::Part>) -> Self::Resp {
        shell.topics = join_topics(parts);
        shell
    }
}

/// A request naming several groups, each answered in its own part.
macro_rules! multi_group {
    (
        $req:ident, $variant:ident, $resp:ident, $part:ident,
        request: |$r:ident, $keep:ident| $subset:expr,
        names: |$n:ident| $names:expr,
        parts: $list:ident
    ) => {
        impl Routed for $req {
            type Resp = $resp;
            type Part = $part;
            const RESEND_SAFE: bool = true;

            fn keys(&self) -> Vec<Key> {
                let $n = self;
                $names.map(|g: &String| Key::Group(g.clone())).collect()
            }

            fn subset(&self, keys: &BTreeSet<Key>) -> Self {
                let $r = self;
                let $keep = |g: &String| keys.contains(&Key::Group(g.clone()));
                $subset
            }

            fn into_request(self) -> Request {
                Request::$variant(self)
            }

            fn from_response(r: Response) -> anyhow::Result<Self::Resp> {
                Ok(expect_response!(r, $variant))
            }

            fn split(resp: Self::Resp, _: &BTreeSet<Key>) -> (Self::Resp, Vec<(Key, Self::Part)>) {
                let parts = resp
                    .$list
                    .into_iter()
                    .map(|p| (Key::Group(p.group_id.clone()), p))
                    .collect();
                let shell = $resp {
                    throttle_time_ms: resp.throttle_time_ms,
                    ..$resp::default()
                };
                (shell, parts)
            }

            fn error(part: &Self::Part) -> ErrorCode {
                part.error_code
            }

            fn join(mut shell: Self::Resp, parts: BTreeMap<Key, Self::Part>) -> Self::Resp {
                shell.$list = groups(parts);
                shell
            }
        }
    };
}

multi_group!(
    OffsetFetchRequest, OffsetFetch, OffsetFetchResponse, OffsetFetchGroupResponse,
    request: |r, keep| OffsetFetchRequest {
        groups: r.groups.iter().filter(|g| keep(&g.group_id)).cloned().collect(),
        require_stable: r.require_stable,
    },
    names: |r| r.groups.iter().map(|g| &g.group_id),
    parts: groups
);

multi_group!(
    DescribeGroupsRequest, DescribeGroups, DescribeGroupsResponse, DescribedGroup,
    request: |r, keep| DescribeGroupsRequest {
        groups: r.groups.iter().filter(|g| keep(g)).cloned().collect(),
        include_authorized_operations: r.include_authorized_operations,
    },
    names: |r| r.groups.iter(),
    parts: groups
);

multi_group!(
    ConsumerGroupDescribeRequest, ConsumerGroupDescribe, ConsumerGroupDescribeResponse,
    ConsumerGroupDescribedGroup,
    request: |r, keep| ConsumerGroupDescribeRequest {
        group_ids: r.group_ids.iter().filter(|g| keep(g)).cloned().collect(),
        include_authorized_operations: r.include_authorized_operations,
    },
    names: |r| r.group_ids.iter(),
    parts: groups
);

multi_group!(
    ShareGroupDescribeRequest, ShareGroupDescribe, ShareGroupDescribeResponse,
    ShareGroupDescribedGroup,
    request: |r, keep| ShareGroupDescribeRequest {
        group_ids: r.group_ids.iter().filter(|g| keep(g)).cloned().collect(),
        include_authorized_operations: r.include_authorized_operations,
    },
    names: |r| r.group_ids.iter(),
    parts: groups
);

multi_group!(
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsets, DescribeShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsGroupResponse,
    request: |r, keep| DescribeShareGroupOffsetsRequest {
        groups: r.groups.iter().filter(|g| keep(&g.group_id)).cloned().collect(),
    },
    names: |r| r.groups.iter().map(|g| &g.group_id),
    parts: groups
);

impl Routed for DeleteGroupsRequest {
    type Resp = DeleteGroupsResponse;
    type Part = DeleteGroupResult;
    // Deleting again would answer GROUP_ID_NOT_FOUND for a group just deleted.
    const RESEND_SAFE: bool = false;

    fn keys(&self) -> Vec<Key> {
        self.groups.iter().map(|g| Key::Group(g.clone())).collect()
    }

    fn subset(&self, keys: &BTreeSet<Key>) -> Self {
        DeleteGroupsRequest {
            groups: self
                .groups
                .iter()
                .filter(|g| keys.contains(&Key::Group((*g).clone())))
                .cloned()
                .collect(),
        }
    }

    fn into_request(self) -> Request {
        Request::DeleteGroups(self)
    }

    fn from_response(r: Response) -> anyhow::Result<Self::Resp> {
        Ok(expect_response!(r, DeleteGroups))
    }

    fn split(resp: Self::Resp, _: &BTreeSet<Key>) -> (Self::Resp, Vec<(Key, Self::Part)>) {
        let parts = resp
            .results
            .into_iter()
            .map(|p| (Key::Group(p.group_id.clone()), p))
            .collect();
        let shell = DeleteGroupsResponse {
            throttle_time_ms: resp.throttle_time_ms,
            results: Vec::new(),
        };
        (shell, parts)
    }

    fn error(part: &Self::Part) -> ErrorCode {
        part.error_code
    }

    fn join(mut shell: Self::Resp, parts: BTreeMap<Key, Self::Part>) -> Self::Resp {
        shell.results = groups(parts);
        shell
    }
}

/// A request about one group, answered as a whole.
macro_rules! single_group {
    ($req:ident, $variant:ident, $resp:ident, |$r:ident| $error:expr) => {
        impl Routed for $req {
            type Resp = $resp;
            type Part = $resp;
            // Joining, syncing, heartbeating, committing the same offsets, leaving and
            // deleting offsets again come to the same; Kafka's clients resend them too.
            const RESEND_SAFE: bool = true;

            fn keys(&self) -> Vec<Key> {
                vec![Key::Group(self.group_id.clone())]
            }

            fn subset(&self, _: &BTreeSet<Key>) -> Self {
                self.clone()
            }

            fn into_request(self) -> Request {
                Request::$variant(self)
            }

            fn from_response(r: Response) -> anyhow::Result<Self::Resp> {
                Ok(expect_response!(r, $variant))
            }

            fn split(
                resp: Self::Resp,
                sent: &BTreeSet<Key>,
            ) -> (Self::Resp, Vec<(Key, Self::Part)>) {
                let parts = sent.iter().next().cloned().map(|k| (k, resp));
                ($resp::default(), parts.into_iter().collect())
            }

            fn error($r: &Self::Part) -> ErrorCode {
                $error
            }

            fn join(shell: Self::Resp, parts: BTreeMap<Key, Self::Part>) -> Self::Resp {
                parts.into_values().next().unwrap_or(shell)
            }
        }
    };
}

single_group!(JoinGroupRequest, JoinGroup, JoinGroupResponse, |r| r
    .error_code);
single_group!(SyncGroupRequest, SyncGroup, SyncGroupResponse, |r| r
    .error_code);
single_group!(HeartbeatRequest, Heartbeat, HeartbeatResponse, |r| r
    .error_code);
single_group!(LeaveGroupRequest, LeaveGroup, LeaveGroupResponse, |r| r
    .error_code);
single_group!(
    OffsetDeleteRequest,
    OffsetDelete,
    OffsetDeleteResponse,
    |r| r.error_code
);
single_group!(
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeat,
    ConsumerGroupHeartbeatResponse,
    |r| r.error_code
);
single_group!(
    OffsetCommitRequest,
    OffsetCommit,
    OffsetCommitResponse,
    |r| r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .find(|c| !c.is_none())
        .unwrap_or(ErrorCode::NONE)
);

#[cfg(test)]
mod tests {
    use super::*;

    fn list_offsets(parts: &[(&str, i32)]) -> ListOffsetsRequest {
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for &(t, p) in parts {
            let partition = ListOffsetsPartition {
                partition_index: p,
                current_leader_epoch: -1,
                timestamp: -1,
            };
            match topics.iter_mut().find(|x| x.name == t) {
                Some(x) => x.partitions.push(partition),
                None => topics.push(ListOffsetsTopic {
                    name: t.into(),
                    partitions: vec![partition],
                }),
            }
        }
        ListOffsetsRequest {
            topics,
            ..ListOffsetsRequest::default()
        }
    }

    #[test]
    fn a_partitioned_request_splits_and_its_answers_merge_in_order() {
        let r = list_offsets(&[("b", 1), ("a", 0), ("b", 0)]);
        let keep: BTreeSet<Key> = [partition_key("b", 0), partition_key("a", 0)].into();
        let sub = r.subset(&keep);
        let mut got: Vec<(String, i32)> = sub
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index))
            })
            .collect();
        got.sort();
        assert_eq!(got, vec![("a".into(), 0), ("b".into(), 0)]);

        let answer = |name: &str, ps: &[i32]| ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: name.into(),
                partitions: ps
                    .iter()
                    .map(|&p| ListOffsetsPartitionResponse {
                        partition_index: p,
                        offset: i64::from(p) + 10,
                        ..ListOffsetsPartitionResponse::default()
                    })
                    .collect(),
            }],
            ..ListOffsetsResponse::default()
        };
        let mut parts = BTreeMap::new();
        for resp in [answer("b", &[1, 0]), answer("a", &[0])] {
            parts.extend(ListOffsetsRequest::split(resp, &BTreeSet::new()).1);
        }
        let merged = ListOffsetsRequest::join(ListOffsetsResponse::default(), parts);
        let flat: Vec<(String, i32, i64)> = merged
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.offset))
            })
            .collect();
        assert_eq!(
            flat,
            vec![
                ("a".into(), 0, 10),
                ("b".into(), 0, 10),
                ("b".into(), 1, 11)
            ]
        );
    }

    #[test]
    fn a_group_request_splits_per_group() {
        let r = DescribeGroupsRequest {
            groups: vec!["x".into(), "y".into()],
            include_authorized_operations: true,
        };
        assert_eq!(
            r.keys(),
            vec![Key::Group("x".into()), Key::Group("y".into())]
        );
        let sub = r.subset(&[Key::Group("y".into())].into());
        assert_eq!(sub.groups, vec!["y".to_string()]);
        assert!(sub.include_authorized_operations);

        let commit = OffsetCommitRequest {
            group_id: "g".into(),
            ..OffsetCommitRequest::default()
        };
        let refused = OffsetCommitResponse {
            topics: vec![OffsetCommitTopicResponse {
                name: "t".into(),
                partitions: vec![PartitionError {
                    partition_index: 0,
                    error_code: ErrorCode::NOT_COORDINATOR,
                }],
            }],
            ..OffsetCommitResponse::default()
        };
        let (_, parts) = OffsetCommitRequest::split(refused, &commit.keys().into_iter().collect());
        assert_eq!(parts.len(), 1);
        assert_eq!(
            OffsetCommitRequest::error(&parts[0].1),
            ErrorCode::NOT_COORDINATOR
        );
    }
}
