//! Directed scenarios of the replication core, one rule each. The simulation covers the
//! combinations; these pin the rules that rare interleavings depend on.

use std::collections::BTreeSet;

use weir_replication::{
    BatchMeta, Bootstrap, Config, ElectionState, EpochCache, FetchAnswer, FetchOutcome,
    FetchRequest, FetchResponse, FollowerAction, Message, NodeId, Offset, Output, Replica, Role,
    VoteRequest, VoteResponse,
};

const TIMEOUT: u64 = 1_000;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn replica(
    id: NodeId,
    voters: &[NodeId],
    election: ElectionState,
    log: &[(Offset, Offset, i32)],
) -> Replica {
    replica_committed_to(id, voters, election, log, 0)
}

/// A replica that knows its log committed below `high_watermark`.
fn replica_committed_to(
    id: NodeId,
    voters: &[NodeId],
    election: ElectionState,
    log: &[(Offset, Offset, i32)],
    high_watermark: Offset,
) -> Replica {
    let mut epochs = EpochCache::default();
    for &(base, _, epoch) in log {
        epochs.assign(epoch, base);
    }
    let log_end = log.last().map_or(0, |&(_, last, _)| last + 1);
    Replica::new(
        Config {
            node_id: id,
            election_timeout_ms: TIMEOUT,
            election_jitter_ms: 0,
            seed: 7,
        },
        Bootstrap {
            election,
            initial_voters: set(voters),
            voter_records: Vec::new(),
            replicas: set(voters),
            log_start: 0,
            log_end,
            epochs,
            high_watermark,
        },
        0,
    )
}

fn granted_vote(out: &[Output]) -> Option<VoteResponse> {
    out.iter().find_map(|o| match o {
        Output::Send(_, Message::VoteResponse(r)) => Some(r.clone()),
        _ => None,
    })
}

/// Elects `r` (a voter among 1, 2, 3) by answering its pre-vote and vote with grants.
fn elect(r: &mut Replica, now: u64) -> Vec<Output> {
    let mut out = Vec::new();
    r.tick(now, &mut out);
    assert_eq!(r.role(), Role::Prospective);
    let epoch = r.epoch();
    for v in [2, 3] {
        r.step(
            now,
            v,
            Message::VoteResponse(VoteResponse {
                epoch,
                granted: true,
                leader: None,
                pre_vote: true,
            }),
            &mut out,
        );
    }
    assert_eq!(r.role(), Role::Candidate);
    let epoch = r.epoch();
    r.step(
        now,
        2,
        Message::VoteResponse(VoteResponse {
            epoch,
            granted: true,
            leader: None,
            pre_vote: false,
        }),
        &mut out,
    );
    assert_eq!(r.role(), Role::Leader);
    out
}

#[test]
fn a_vote_is_persisted_before_it_is_sent_and_binds_after_restart() {
    let mut v = replica(
        1,
        &[1, 2, 3],
        ElectionState {
            epoch: 4,
            voted_for: None,
        },
        &[],
    );
    let mut out = Vec::new();
    v.step(
        0,
        2,
        Message::Vote(VoteRequest {
            epoch: 5,
            candidate: 2,
            last_epoch: -1,
            log_end: 0,
            pre_vote: false,
        }),
        &mut out,
    );
    let persisted = out.iter().rposition(|o| {
        matches!(
            o,
            Output::Persist(ElectionState {
                epoch: 5,
                voted_for: Some(2)
            })
        )
    });
    let sent = out
        .iter()
        .position(|o| matches!(o, Output::Send(2, Message::VoteResponse(r)) if r.granted));
    assert!(
        matches!((persisted, sent), (Some(p), Some(s)) if p < s),
        "vote must be persisted before it is sent: {out:?}"
    );
    // After a crash the replica comes back from what was persisted and refuses a rival.
    let mut restarted = replica(
        1,
        &[1, 2, 3],
        ElectionState {
            epoch: 5,
            voted_for: Some(2),
        },
        &[],
    );
    let mut out = Vec::new();
    restarted.step(
        0,
        3,
        Message::Vote(VoteRequest {
            epoch: 5,
            candidate: 3,
            last_epoch: -1,
            log_end: 0,
            pre_vote: false,
        }),
        &mut out,
    );
    assert!(matches!(
        granted_vote(&out),
        Some(VoteResponse { granted: false, .. })
    ));
}

#[test]
fn votes_go_only_to_logs_at_least_as_up_to_date() {
    let mut v = replica(
        1,
        &[1, 2, 3],
        ElectionState {
            epoch: 3,
            voted_for: None,
        },
        &[(0, 9, 3)],
    );
    let mut out = Vec::new();
    v.step(
        0,
        2,
        Message::Vote(VoteRequest {
            epoch: 4,
            candidate: 2,
            last_epoch: 2,
            log_end: 50,
            pre_vote: false,
        }),
        &mut out,
    );
    assert!(matches!(
        granted_vote(&out),
        Some(VoteResponse { granted: false, .. })
    ));
    let mut out = Vec::new();
    v.step(
        0,
        3,
        Message::Vote(VoteRequest {
            epoch: 4,
            candidate: 3,
            last_epoch: 3,
            log_end: 10,
            pre_vote: false,
        }),
        &mut out,
    );
    assert!(matches!(
        granted_vote(&out),
        Some(VoteResponse { granted: true, .. })
    ));
}

#[test]
fn a_pre_vote_changes_nothing_and_is_refused_while_the_leader_is_heard() {
    let mut f = replica(
        1,
        &[1, 2, 3],
        ElectionState {
            epoch: 2,
            voted_for: None,
        },
        &[],
    );
    let mut out = Vec::new();
    f.step(
        0,
        2,
        Message::BeginEpoch {
            epoch: 2,
            leader: 2,
        },
        &mut out,
    );
    assert_eq!(f.role(), Role::Follower);
    let mut out = Vec::new();
    let pre = VoteRequest {
        epoch: 3,
        candidate: 3,
        last_epoch: -1,
        log_end: 0,
        pre_vote: true,
    };
    f.step(10, 3, Message::Vote(pre.clone()), &mut out);
    assert!(matches!(
        granted_vote(&out),
        Some(VoteResponse { granted: false, .. })
    ));
    assert!(!out.iter().any(|o| matches!(o, Output::Persist(_))));
    assert_eq!(f.epoch(), 2);
    // Once the leader has been silent for the timeout, the pre-vote is granted, still without
    // any change of epoch.
    let mut out = Vec::new();
    f.step(TIMEOUT + 10, 3, Message::Vote(pre), &mut out);
    assert!(matches!(
        granted_vote(&out),
        Some(VoteResponse { granted: true, .. })
    ));
    assert_eq!(f.epoch(), 2);
}

#[test]
fn a_new_leader_commits_earlier_epochs_only_with_an_entry_of_its_own() {
    let mut l = replica(
        1,
        &[1, 2, 3],
        ElectionState {
            epoch: 2,
            voted_for: None,
        },
        &[(0, 9, 2)],
    );
    let out = elect(&mut l, 2 * TIMEOUT);
    assert_eq!(l.epoch(), 3);
    assert!(out.contains(&Output::AppendControl {
        epoch: 3,
        voters: None
    }));
    let now = 2 * TIMEOUT;
    let mut out = Vec::new();
    // A majority (leader and follower 2) holds the epoch-2 entries, but not yet the leader's own.
    l.on_durable(10, &mut out);
    l.handle_fetch(
        now,
        2,
        FetchRequest {
            epoch: 3,
            fetch_offset: 10,
            last_fetched_epoch: 2,
        },
        &mut out,
    );
    assert_eq!(
        l.high_watermark(),
        0,
        "must not commit epoch-2 entries alone"
    );
    l.on_appended(
        &[BatchMeta {
            base_offset: 10,
            last_offset: 10,
            epoch: 3,
            voters: None,
        }],
        now,
        &mut out,
    );
    l.on_durable(11, &mut out);
    assert_eq!(
        l.high_watermark(),
        0,
        "the leader's own entry is not on a majority yet"
    );
    let answer = l.handle_fetch(
        now,
        2,
        FetchRequest {
            epoch: 3,
            fetch_offset: 11,
            last_fetched_epoch: 3,
        },
        &mut out,
    );
    assert_eq!(l.high_watermark(), 11);
    assert!(matches!(
        answer,
        FetchAnswer::Read {
            from: 11,
            high_watermark: 11,
            ..
        }
    ));
}

/// Kafka's leader changes take no offset: a leader elected over a log committed to its end (a
/// new partition, a quiet failover) appends nothing until a voter change needs an entry of its
/// epoch committed first.
#[test]
fn a_leader_over_a_committed_log_appends_no_marker_until_a_voter_change() {
    let marker = |out: &[Output]| {
        out.iter()
            .any(|o| matches!(o, Output::AppendControl { voters: None, .. }))
    };
    let mut fresh = replica(1, &[1, 2, 3], ElectionState::default(), &[]);
    assert!(
        !marker(&elect(&mut fresh, 2 * TIMEOUT)),
        "a new partition's log is empty"
    );

    // Offsets 0..=9 of epoch 2, known committed and durable: elected for epoch 3.
    let committed_leader = || {
        let mut l = replica_committed_to(
            1,
            &[1, 2, 3],
            ElectionState {
                epoch: 2,
                voted_for: None,
            },
            &[(0, 9, 2)],
            10,
        );
        l.on_durable(10, &mut Vec::new());
        let out = elect(&mut l, 2 * TIMEOUT);
        assert_eq!(l.epoch(), 3);
        (l, out)
    };
    let (mut l, out) = committed_leader();
    assert!(!marker(&out), "everything is committed: nothing to write");
    // A client batch of the new epoch commits as usual.
    let now = 2 * TIMEOUT;
    let mut out = Vec::new();
    l.on_appended(
        &[BatchMeta {
            base_offset: 10,
            last_offset: 10,
            epoch: 3,
            voters: None,
        }],
        now,
        &mut out,
    );
    l.on_durable(11, &mut out);
    l.handle_fetch(
        now,
        2,
        FetchRequest {
            epoch: 3,
            fetch_offset: 11,
            last_fetched_epoch: 3,
        },
        &mut out,
    );
    assert_eq!(l.high_watermark(), 11);
    assert!(!marker(&out));

    // A voter change under a leader with no entry of its epoch asks for the marker first.
    let (mut l, _) = committed_leader();
    let mut out = Vec::new();
    l.set_target_replicas(set(&[1, 2]), now, &mut out);
    let fetch = FetchRequest {
        epoch: 3,
        fetch_offset: 10,
        last_fetched_epoch: 2,
    };
    l.handle_fetch(now, 2, fetch, &mut out);
    l.handle_fetch(now, 3, fetch, &mut out);
    let asked: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::AppendControl { voters, .. } => Some(voters.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![None],
        "the marker once, and no voter change yet"
    );
}

#[test]
fn a_follower_commits_no_further_than_its_own_disk() {
    let (mut f, mut out) = follower_told_of_records(5);
    f.on_appended(
        &[BatchMeta {
            base_offset: 0,
            last_offset: 4,
            epoch: 1,
            voters: None,
        }],
        1,
        &mut out,
    );
    assert_eq!(f.high_watermark(), 0);
    assert!(
        f.fetch_target().is_none(),
        "no fetch (acknowledgement) before the sync"
    );
    f.on_durable(3, &mut out);
    assert_eq!(f.high_watermark(), 3);
    f.on_durable(5, &mut out);
    assert_eq!(f.high_watermark(), 5);
}

#[test]
fn divergence_is_resolved_by_epochs_kip_320() {
    // Follower: epoch 1 up to 20, epoch 3 from 20 to 30 (a leader of epoch 3 that lost).
    let mut f = replica(
        2,
        &[1, 2, 3],
        ElectionState {
            epoch: 4,
            voted_for: None,
        },
        &[(0, 9, 1), (10, 19, 1), (20, 29, 3)],
    );
    let mut out = Vec::new();
    f.step(
        0,
        1,
        Message::BeginEpoch {
            epoch: 4,
            leader: 1,
        },
        &mut out,
    );
    let (_, sent) = f.fetch_target().expect("fetch");
    assert_eq!(sent.last_fetched_epoch, 3);
    // Leader: epoch 1 up to 15, then epoch 2, then 4. It has no epoch 3: it answers with its
    // largest epoch below 3, which the follower does not have either.
    let action = f.handle_fetch_response(
        1,
        1,
        sent,
        FetchResponse {
            epoch: 4,
            leader: Some(1),
            outcome: FetchOutcome::Diverging {
                epoch: 2,
                end_offset: 25,
                log_start: 0,
            },
        },
        &mut out,
    );
    // Cut back to the end of our largest epoch below 2 (epoch 1 ends at 20), then ask again.
    assert_eq!(action, FollowerAction::Truncate(20));
    let (_, sent) = f.fetch_target().expect("fetch");
    assert_eq!((sent.fetch_offset, sent.last_fetched_epoch), (20, 1));
    let action = f.handle_fetch_response(
        2,
        1,
        sent,
        FetchResponse {
            epoch: 4,
            leader: Some(1),
            outcome: FetchOutcome::Diverging {
                epoch: 1,
                end_offset: 15,
                log_start: 0,
            },
        },
        &mut out,
    );
    assert_eq!(action, FollowerAction::Truncate(15));
}

#[test]
fn a_late_answer_to_an_older_fetch_is_ignored() {
    let mut f = replica(
        2,
        &[1, 2, 3],
        ElectionState {
            epoch: 1,
            voted_for: None,
        },
        &[(0, 9, 1)],
    );
    let mut out = Vec::new();
    f.step(
        0,
        1,
        Message::BeginEpoch {
            epoch: 1,
            leader: 1,
        },
        &mut out,
    );
    let old = FetchRequest {
        epoch: 1,
        fetch_offset: 5,
        last_fetched_epoch: 1,
    };
    let action = f.handle_fetch_response(
        1,
        1,
        old,
        FetchResponse {
            epoch: 1,
            leader: Some(1),
            outcome: FetchOutcome::Diverging {
                epoch: 1,
                end_offset: 5,
                log_start: 0,
            },
        },
        &mut out,
    );
    assert_eq!(action, FollowerAction::Ignore);
    assert_eq!(f.log_end(), 10);
}

#[test]
fn a_single_voter_leads_at_once_and_commits_what_is_durable() {
    let mut r = replica(
        1,
        &[1],
        ElectionState {
            epoch: 7,
            voted_for: Some(1),
        },
        &[(0, 9, 7)],
    );
    let mut out = Vec::new();
    r.tick(0, &mut out);
    assert_eq!(r.role(), Role::Leader);
    assert_eq!(r.epoch(), 8);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::AppendControl { .. })));
    assert_eq!(r.append_epoch(), Some(8));
    r.on_appended(
        &[BatchMeta {
            base_offset: 10,
            last_offset: 12,
            epoch: 8,
            voters: None,
        }],
        0,
        &mut out,
    );
    r.on_durable(13, &mut out);
    assert_eq!(r.high_watermark(), 13);
}

#[test]
fn a_leader_cut_off_from_the_majority_steps_down() {
    let mut l = replica(
        1,
        &[1, 2, 3],
        ElectionState {
            epoch: 1,
            voted_for: None,
        },
        &[],
    );
    elect(&mut l, TIMEOUT);
    let mut out = Vec::new();
    l.tick(2 * TIMEOUT + 1, &mut out);
    assert_ne!(l.role(), Role::Leader);
    assert_eq!(l.append_epoch(), None);
}

#[test]
fn membership_grows_one_caught_up_learner_at_a_time() {
    let mut l = replica(1, &[1], ElectionState::default(), &[]);
    let mut out = Vec::new();
    l.tick(0, &mut out);
    assert_eq!(l.role(), Role::Leader);
    l.on_appended(
        &[BatchMeta {
            base_offset: 0,
            last_offset: 9,
            epoch: 1,
            voters: None,
        }],
        0,
        &mut out,
    );
    l.on_durable(10, &mut out);
    let mut out = Vec::new();
    l.set_target_replicas(set(&[1, 2, 3]), 0, &mut out);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::AppendControl { .. })),
        "nobody caught up yet"
    );
    // Learner 2 catches up: it becomes a voter, alone.
    let mut out = Vec::new();
    let fetch = |offset| FetchRequest {
        epoch: 1,
        fetch_offset: offset,
        last_fetched_epoch: if offset > 0 { 1 } else { -1 },
    };
    l.handle_fetch(1, 2, fetch(10), &mut out);
    l.handle_fetch(1, 3, fetch(10), &mut out);
    let asked: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::AppendControl { voters, .. } => voters.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![set(&[1, 2])]);
    l.on_appended(
        &[BatchMeta {
            base_offset: 10,
            last_offset: 10,
            epoch: 1,
            voters: Some(set(&[1, 2])),
        }],
        1,
        &mut out,
    );
    l.on_durable(11, &mut out);
    assert_eq!(l.voters(), &set(&[1, 2]));
    assert_eq!(
        l.high_watermark(),
        10,
        "the change commits only on both voters"
    );
    let mut out = Vec::new();
    l.handle_fetch(2, 3, fetch(11), &mut out);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::AppendControl { .. })),
        "one change at a time"
    );
    l.handle_fetch(2, 2, fetch(11), &mut out);
    assert_eq!(l.high_watermark(), 11);
    let asked: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::AppendControl { voters, .. } => voters.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![set(&[1, 2, 3])]);
}

/// The preferred replica of a new partition stands at once; a replica that has seen an epoch
/// keeps its randomised timeout (a restart must not disturb a leader elsewhere).
#[test]
fn only_a_new_partition_campaigns_at_once() {
    let mut fresh = replica(1, &[1, 2, 3], ElectionState::default(), &[]);
    fresh.campaign_if_new(5);
    let mut out = Vec::new();
    fresh.tick(5, &mut out);
    assert_eq!(fresh.role(), Role::Prospective);

    let seen = ElectionState {
        epoch: 2,
        voted_for: None,
    };
    let mut old = replica(1, &[1, 2, 3], seen, &[(0, 9, 2)]);
    old.campaign_if_new(5);
    let mut out = Vec::new();
    old.tick(5, &mut out);
    assert_ne!(old.role(), Role::Prospective);
}

/// A follower of epoch 1's leader (node 1), with an empty log, told the leader's log holds
/// records below `high_watermark`.
fn follower_told_of_records(high_watermark: Offset) -> (Replica, Vec<Output>) {
    let mut f = replica(
        2,
        &[1, 2, 3],
        ElectionState {
            epoch: 1,
            voted_for: None,
        },
        &[],
    );
    let mut out = Vec::new();
    f.step(
        0,
        1,
        Message::BeginEpoch {
            epoch: 1,
            leader: 1,
        },
        &mut out,
    );
    let (_, sent) = f.fetch_target().expect("follower fetches");
    let action = f.handle_fetch_response(
        1,
        1,
        sent,
        FetchResponse {
            epoch: 1,
            leader: Some(1),
            outcome: FetchOutcome::Records {
                high_watermark,
                log_start: 0,
            },
        },
        &mut out,
    );
    assert_eq!(action, FollowerAction::Append { at: 0 });
    (f, out)
}

fn meta(base_offset: Offset, last_offset: Offset) -> BatchMeta {
    BatchMeta {
        base_offset,
        last_offset,
        epoch: 1,
        voters: None,
    }
}

#[test]
fn a_follower_appends_past_the_gaps_of_a_compacted_leader_log() {
    let (mut f, mut out) = follower_told_of_records(10);
    // The leader's log cleaner removed the batches at 2-4 and 6-7.
    f.on_appended(&[meta(0, 1), meta(5, 5), meta(8, 9)], 1, &mut out);
    f.on_durable(10, &mut out);
    assert_eq!(f.high_watermark(), 10);
    let (_, next) = f.fetch_target().expect("fetches on");
    assert_eq!(next.fetch_offset, 10, "from its log end, past the gaps");
}

#[test]
#[should_panic(expected = "append at 3 but log ends at 0")]
fn a_leader_appends_only_at_its_log_end() {
    let mut r = replica(
        1,
        &[1, 2, 3],
        ElectionState {
            epoch: 0,
            voted_for: None,
        },
        &[],
    );
    let mut out = elect(&mut r, TIMEOUT * 3);
    r.on_appended(&[meta(3, 3)], TIMEOUT * 3, &mut out);
}
