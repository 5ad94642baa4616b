//! Request handlers: turn a decoded `Request` into a `Response` using the broker's state.
//!
//! Kafka applies one connection's requests in the order they were sent. Here that is the contract
//! of `dispatch`: the connection awaits it before reading the next request, and every change a
//! request makes to broker state (produce offsets, committed offsets, group membership, topics,
//! log start offsets) happens before it returns — its in-order part. What it hands back is a
//! future for what may overlap with later requests: waiting (for fsync, for a long-poll fetch to
//! fill, for a parked JoinGroup/SyncGroup to be answered) and building the response. So pipelined
//! requests take effect in request order, while produce fsyncs and long polls still overlap.
//! Fetch is the one handler that reads and updates state (its KIP-227 session) in its future: a
//! session's epochs already order a client's fetches, and reading later only returns newer data.
//! Work that blocks (creating or deleting topics, deleting records) runs on the blocking pool
//! inside the in-order part; it holds up only its own connection.
//!
//! Handlers translate between wire-shaped values and the broker's modules; the rules themselves
//! live in those modules.

mod access;
mod acls;
mod admin;
mod cluster_admin;
mod configs;
mod consumer_groups;
mod coordinator;
mod down_convert;
mod fetch;
mod log_dirs;
mod metadata;
mod not_served;
mod produce;
mod quotas;
mod replication;
mod scram_credentials;
mod share;
mod share_state;
mod txn;

pub use fetch::records_in_memory;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use weir_protocol::{Request, RequestHeader, Response};

use crate::broker::Broker;
use crate::security::{Principal, SecurityProtocol};
use access::then;

/// What a handler knows about the connection a request came on: what an authorizer needs
/// (principal, listener, client address).
pub struct RequestContext {
    pub peer: SocketAddr,
    /// The listener's name.
    pub listener: Arc<str>,
    pub security_protocol: SecurityProtocol,
    /// Who the client authenticated as (`User:ANONYMOUS` when it did not).
    pub principal: Principal,
}

/// The response of a request, still to be computed. `None`: no response is sent (produce acks=0).
pub type ResponseFuture = Pin<Box<dyn Future<Output = Option<Response>> + Send>>;

fn ready(response: Response) -> ResponseFuture {
    Box::pin(std::future::ready(Some(response)))
}

/// Runs a request's in-order part (see the module docs) and returns the rest.
pub async fn dispatch(
    broker: &Arc<Broker>,
    ctx: &Arc<RequestContext>,
    header: &RequestHeader,
    request: Request,
) -> ResponseFuture {
    let b = broker.clone();
    let version = header.api_version;
    // Authorization comes first, as in Kafka (a client that may not use a group learns nothing
    // about where it is coordinated).
    let az = b.authorizer.session(&ctx.principal, ctx.peer.ip());
    if let Some(refused) = access::refuse_cluster_call(&az, &request)
        .or_else(|| access::refuse_group_call(&az, &request))
        .or_else(|| access::refuse_share_call(&az, &b, &request))
    {
        return ready(refused);
    }
    if let Some(refused) = coordinator::refuse(&b, &request) {
        return ready(refused);
    }
    match request {
        Request::ApiVersions(_) => ready(Response::ApiVersions(metadata::api_versions())),
        Request::Metadata(r) => ready(Response::Metadata(metadata::metadata(&b, &az, r).await)),
        Request::DescribeTopicPartitions(r) => ready(Response::DescribeTopicPartitions(
            metadata::describe_topic_partitions(&b, &az, r),
        )),
        Request::ListConfigResources(r) => ready(Response::ListConfigResources(
            configs::list_config_resources(&b, &az, version, r),
        )),
        Request::DescribeLogDirs(r) => ready(Response::DescribeLogDirs(
            log_dirs::describe_log_dirs(&b, &az, r),
        )),
        Request::AlterReplicaLogDirs(r) => ready(Response::AlterReplicaLogDirs(
            log_dirs::alter_replica_log_dirs(&b, &az, r),
        )),
        Request::DescribeCluster(r) => ready(Response::DescribeCluster(
            metadata::describe_cluster(&b, &az, &r),
        )),
        Request::DescribeQuorum(r) => {
            ready(Response::DescribeQuorum(metadata::describe_quorum(&b, r)))
        }
        Request::FindCoordinator(r) => Box::pin(async move {
            Some(Response::FindCoordinator(
                metadata::find_coordinator(&b, &az, version, r).await,
            ))
        }),
        Request::Produce(mut r) => {
            if r.uses_topic_ids {
                name_topics_by_id(&b, r.topics.iter_mut().map(|t| (&mut t.name, t.topic_id)));
            }
            let post = access::split_produce(&az, &mut r);
            then(produce::produce(&b, r).await, post)
        }
        Request::Fetch(mut r) => {
            if r.uses_topic_ids {
                name_topics_by_id(&b, r.topics.iter_mut().map(|t| (&mut t.name, t.topic_id)));
            }
            if r.replica_id >= 0 && az.is_enabled() {
                return match access::refuse_replica_fetch(&az, &r) {
                    Some(refused) => ready(refused),
                    None => fetch_request(b, r),
                };
            }
            let post = access::split_fetch(&az, &mut r);
            then(fetch_request(b, r), post)
        }
        Request::DescribeProducers(mut r) => {
            let post = access::split_describe_producers(&az, &mut r);
            then(
                ready(Response::DescribeProducers(produce::describe_producers(
                    &b, r,
                ))),
                post,
            )
        }
        Request::ListOffsets(mut r) => {
            let post = access::split_list_offsets(&az, &mut r);
            then(
                ready(Response::ListOffsets(fetch::list_offsets(&b, r))),
                post,
            )
        }
        Request::OffsetForLeaderEpoch(mut r) => {
            let post = access::split_offset_for_leader_epoch(&az, &mut r);
            then(
                ready(Response::OffsetForLeaderEpoch(
                    fetch::offset_for_leader_epoch(&b, r),
                )),
                post,
            )
        }
        Request::JoinGroup(r) => {
            let client_id = header.client_id.clone().unwrap_or_default();
            consumer_groups::join_group(&b, ctx, client_id, version, r)
        }
        Request::SyncGroup(r) => consumer_groups::sync_group(&b, r),
        Request::Heartbeat(r) => ready(Response::Heartbeat(consumer_groups::heartbeat(&b, r))),
        Request::LeaveGroup(r) => consumer_groups::leave_group(&b, r),
        Request::ListGroups(r) => then(
            ready(Response::ListGroups(consumer_groups::list_groups(&b, r))),
            access::filter_list_groups(&az),
        ),
        Request::DescribeGroups(mut r) => {
            let post = access::split_describe_groups(&az, &mut r);
            let elsewhere = coordinator::split_describe_groups(&b, &mut r);
            then(
                then(
                    ready(Response::DescribeGroups(consumer_groups::describe_groups(
                        &b, &az, version, r,
                    ))),
                    elsewhere,
                ),
                post,
            )
        }
        Request::ConsumerGroupHeartbeat(r) => {
            if let Some(refused) = access::refuse_consumer_group_topics(&az, &r) {
                return ready(refused);
            }
            let ctx = ctx.clone();
            let client_id = header.client_id.clone().unwrap_or_default();
            Box::pin(async move {
                Some(Response::ConsumerGroupHeartbeat(
                    consumer_groups::consumer_group_heartbeat(&b, &ctx, client_id, version, r)
                        .await,
                ))
            })
        }
        Request::ConsumerGroupDescribe(mut r) => {
            let post = access::split_consumer_group_describe(&az, &mut r);
            let elsewhere = coordinator::split_consumer_group_describe(&b, &mut r);
            then(
                then(
                    ready(Response::ConsumerGroupDescribe(
                        consumer_groups::consumer_group_describe(&b, r),
                    )),
                    elsewhere,
                ),
                post,
            )
        }
        Request::DeleteGroups(mut r) => {
            let post = access::split_delete_groups(&az, &mut r);
            let elsewhere = coordinator::split_delete_groups(&b, &mut r);
            then(then(consumer_groups::delete_groups(&b, r), elsewhere), post)
        }
        Request::OffsetCommit(mut r) => match access::split_offset_commit(&az, &mut r) {
            Err(refused) => ready(*refused),
            Ok(post) => then(consumer_groups::offset_commit(&b, version, r), post),
        },
        Request::OffsetFetch(mut r) => {
            let post = access::split_offset_fetch(&az, &mut r);
            let elsewhere = coordinator::split_offset_fetch(&b, &mut r);
            then(
                then(
                    ready(Response::OffsetFetch(consumer_groups::offset_fetch(&b, r))),
                    elsewhere,
                ),
                post,
            )
        }
        Request::OffsetDelete(mut r) => match access::split_offset_delete(&az, &mut r) {
            Err(refused) => ready(*refused),
            Ok(post) => then(consumer_groups::offset_delete(&b, r), post),
        },
        Request::InitProducerId(r) => match access::refuse_init_producer_id(&az, &r) {
            Some(refused) => ready(refused),
            None if r.transactional_id.is_some() => txn::init_producer_id(&b, version, r).await,
            None => ready(Response::InitProducerId(produce::init_producer_id(&b, r))),
        },
        Request::AddPartitionsToTxn(r) => txn::add_partitions_to_txn(&b, &az, version, r),
        Request::AddOffsetsToTxn(r) => txn::add_offsets_to_txn(&b, &az, version, r),
        Request::EndTxn(r) => txn::end_txn(&b, &az, version, r),
        Request::TxnOffsetCommit(r) => txn::txn_offset_commit(&b, &az, version, r).await,
        Request::WriteTxnMarkers(r) => txn::write_txn_markers(&b, r),
        Request::DescribeTransactions(r) => ready(Response::DescribeTransactions(
            txn::describe_transactions(&b, &az, r),
        )),
        Request::ListTransactions(r) => ready(Response::ListTransactions(txn::list_transactions(
            &b, &az, r,
        ))),
        Request::CreateTopics(mut r) => {
            let post = access::split_create_topics(&az, &mut r);
            then(
                ready(Response::CreateTopics(admin::create_topics(&b, r).await)),
                post,
            )
        }
        Request::DeleteTopics(mut r) => {
            let post = access::split_delete_topics(&az, &b, &mut r);
            then(
                ready(Response::DeleteTopics(admin::delete_topics(&b, r).await)),
                post,
            )
        }
        Request::CreatePartitions(mut r) => {
            let post = access::split_create_partitions(&az, &mut r);
            then(
                ready(Response::CreatePartitions(
                    admin::create_partitions(&b, r).await,
                )),
                post,
            )
        }
        Request::DescribeConfigs(mut r) => {
            let post = access::split_describe_configs(&az, &mut r);
            then(
                ready(Response::DescribeConfigs(admin::describe_configs(&b, r))),
                post,
            )
        }
        Request::AlterConfigs(mut r) => {
            let post = access::split_alter_configs(&az, &mut r);
            then(
                ready(Response::AlterConfigs(admin::alter_configs(&b, r).await)),
                post,
            )
        }
        Request::IncrementalAlterConfigs(mut r) => {
            let post = access::split_incremental_alter_configs(&az, &mut r);
            then(
                ready(Response::IncrementalAlterConfigs(
                    admin::incremental_alter_configs(&b, r).await,
                )),
                post,
            )
        }
        Request::DeleteRecords(mut r) => {
            let post = access::split_delete_records(&az, &mut r);
            then(
                ready(Response::DeleteRecords(admin::delete_records(&b, r).await)),
                post,
            )
        }
        Request::DescribeAcls(r) => ready(Response::DescribeAcls(acls::describe(&b, r))),
        Request::CreateAcls(r) => ready(Response::CreateAcls(acls::create(&b, r).await)),
        Request::DeleteAcls(r) => ready(Response::DeleteAcls(acls::delete(&b, r).await)),
        Request::DescribeClientQuotas(r) => {
            ready(Response::DescribeClientQuotas(quotas::describe(&b, r)))
        }
        Request::AlterClientQuotas(r) => {
            ready(Response::AlterClientQuotas(quotas::alter(&b, r).await))
        }
        // SASL requests on SASL listeners are handled by `server` before dispatch; elsewhere
        // they are out of place, as in Kafka.
        Request::SaslHandshake(_) => ready(Response::SaslHandshake(
            weir_protocol::SaslHandshakeResponse {
                error_code: weir_protocol::ErrorCode::ILLEGAL_SASL_STATE,
                mechanisms: Vec::new(),
            },
        )),
        Request::ShareGroupHeartbeat(r) => {
            let ctx = ctx.clone();
            let client_id = header.client_id.clone().unwrap_or_default();
            Box::pin(async move {
                Some(Response::ShareGroupHeartbeat(
                    share::share_group_heartbeat(&b, &ctx, client_id, r).await,
                ))
            })
        }
        Request::ShareGroupDescribe(mut r) => {
            let post = access::split_share_group_describe(&az, &mut r);
            let elsewhere = coordinator::split_share_group_describe(&b, &mut r);
            then(
                then(
                    ready(Response::ShareGroupDescribe(share::share_group_describe(
                        &b, &az, r,
                    ))),
                    elsewhere,
                ),
                post,
            )
        }
        Request::ShareFetch(r) => share::share_fetch(&b, r),
        Request::ShareAcknowledge(r) => share::share_acknowledge(&b, r),
        Request::DescribeShareGroupOffsets(mut r) => {
            let post = access::split_describe_share_group_offsets(&az, &mut r);
            let elsewhere = coordinator::split_describe_share_group_offsets(&b, &mut r);
            // Off the async threads: the share state may be owned by another broker.
            let b2 = b.clone();
            let described: ResponseFuture = Box::pin(async move {
                blocking(move || share::describe_share_group_offsets(&b2, r))
                    .await
                    .map(Response::DescribeShareGroupOffsets)
            });
            then(then(described, elsewhere), post)
        }
        Request::AlterShareGroupOffsets(r) => share::alter_share_group_offsets(&b, r),
        Request::DeleteShareGroupOffsets(r) => share::delete_share_group_offsets(&b, r),
        // The share state persister (inter-broker; in-process on the owner itself).
        Request::InitializeShareGroupState(r) => share_state::initialize(&b, r),
        Request::ReadShareGroupState(r) => {
            ready(Response::ReadShareGroupState(share_state::read(&b, r)))
        }
        Request::WriteShareGroupState(r) => share_state::write(&b, r),
        Request::DeleteShareGroupState(r) => share_state::delete(&b, r),
        Request::ReadShareGroupStateSummary(r) => ready(Response::ReadShareGroupStateSummary(
            share_state::read_summary(&b, r),
        )),
        Request::SaslAuthenticate(_) => ready(Response::SaslAuthenticate(
            weir_protocol::SaslAuthenticateResponse {
                error_code: weir_protocol::ErrorCode::ILLEGAL_SASL_STATE,
                error_message: Some("SaslAuthenticate is not expected on this listener".into()),
                ..Default::default()
            },
        )),
        Request::DescribeUserScramCredentials(r) => ready(Response::DescribeUserScramCredentials(
            scram_credentials::describe(&b, r),
        )),
        Request::AlterUserScramCredentials(r) => ready(Response::AlterUserScramCredentials(
            scram_credentials::alter(&b, r).await,
        )),
        Request::ElectLeaders(r) => Box::pin(async move {
            Some(Response::ElectLeaders(
                cluster_admin::elect_leaders(&b, r).await,
            ))
        }),
        Request::AlterPartitionReassignments(r) => Box::pin(async move {
            Some(Response::AlterPartitionReassignments(
                cluster_admin::alter_partition_reassignments(&b, r).await,
            ))
        }),
        Request::ListPartitionReassignments(r) => ready(Response::ListPartitionReassignments(
            cluster_admin::list_partition_reassignments(&b, r),
        )),
        // Inter-broker Raft messages: served in a cluster, refused on a single node.
        Request::Vote(r) if b.cluster.is_some() => {
            Box::pin(async move { Some(Response::Vote(replication::vote(&b, r).await)) })
        }
        Request::BeginQuorumEpoch(r) if b.cluster.is_some() => Box::pin(async move {
            Some(Response::BeginQuorumEpoch(
                replication::begin_quorum_epoch(&b, r).await,
            ))
        }),
        Request::EndQuorumEpoch(r) if b.cluster.is_some() => Box::pin(async move {
            Some(Response::EndQuorumEpoch(
                replication::end_quorum_epoch(&b, r).await,
            ))
        }),
        Request::Vote(_) => ready(Response::Vote(not_served::vote())),
        Request::BeginQuorumEpoch(_) => {
            ready(Response::BeginQuorumEpoch(not_served::begin_quorum_epoch()))
        }
        Request::EndQuorumEpoch(_) => {
            ready(Response::EndQuorumEpoch(not_served::end_quorum_epoch()))
        }
    }
}

/// A Fetch: a follower's (in a cluster) goes down the replication path; a consumer's is read,
/// and down-converted for the old formats.
/// KIP-516: fills in the name of each topic a request names by id (Produce v13+, Fetch v13+),
/// for what goes by name (ACLs, the log). An id this broker does not know leaves the name empty
/// (no topic has an empty name), and the handler answers UNKNOWN_TOPIC_ID.
fn name_topics_by_id<'a>(
    broker: &Broker,
    topics: impl Iterator<Item = (&'a mut String, [u8; 16])>,
) {
    for (name, id) in topics {
        *name = broker
            .topics
            .by_id(id)
            .map(|known| known.name.clone())
            .unwrap_or_default();
    }
}

fn fetch_request(b: Arc<Broker>, r: weir_protocol::requests::FetchRequest) -> ResponseFuture {
    if r.replica_id >= 0 && b.cluster.is_some() {
        return Box::pin(
            async move { Some(Response::Fetch(replication::replica_fetch(&b, r).await)) },
        );
    }
    match down_convert::plan(&r) {
        None => Box::pin(async move { Some(Response::Fetch(fetch::fetch(&b, r).await)) }),
        Some(plan) => Box::pin(async move {
            let mut response = fetch::fetch(&b, r).await;
            // Decompressing and recompressing is CPU work: off the async workers.
            let converted = blocking(move || {
                down_convert::apply(&b, &plan, &mut response);
                response
            })
            .await?;
            Some(Response::Fetch(converted))
        }),
    }
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}
