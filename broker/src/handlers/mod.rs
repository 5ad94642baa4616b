//! Request handlers: turn a decoded `Request` into a `Response` using the broker's state.
//!
//! `dispatch` runs the part of a request that must happen in the order requests arrived on the
//! connection (produce offset assignment) before it returns, and hands back a future for the rest
//! (waiting for fsync, long-poll fetches, parked group joins). Handlers translate between wire-shaped
//! values and the broker's modules; the rules themselves live in those modules.

mod admin;
mod consumer_groups;
mod down_convert;
mod fetch;
mod metadata;
mod produce;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use weir_protocol::{Request, RequestHeader, Response};

use crate::broker::Broker;

/// What a handler knows about the connection a request came on.
pub struct RequestContext {
    pub peer: SocketAddr,
}

/// The response of a request, still to be computed. `None`: no response is sent (produce acks=0).
pub type ResponseFuture = Pin<Box<dyn Future<Output = Option<Response>> + Send>>;

fn ready(response: Response) -> ResponseFuture {
    Box::pin(std::future::ready(Some(response)))
}

pub fn dispatch(
    broker: &Arc<Broker>,
    ctx: &Arc<RequestContext>,
    header: &RequestHeader,
    request: Request,
) -> ResponseFuture {
    let b = broker.clone();
    let version = header.api_version;
    match request {
        Request::ApiVersions(_) => ready(Response::ApiVersions(metadata::api_versions())),
        Request::Metadata(r) => {
            Box::pin(async move { Some(Response::Metadata(metadata::metadata(&b, r).await)) })
        }
        Request::DescribeCluster(_) => {
            ready(Response::DescribeCluster(metadata::describe_cluster(&b)))
        }
        Request::FindCoordinator(r) => {
            ready(Response::FindCoordinator(metadata::find_coordinator(&b, r)))
        }
        Request::Produce(r) => produce::produce(&b, r),
        Request::Fetch(r) => match down_convert::plan(&r) {
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
        },
        Request::ListOffsets(r) => ready(Response::ListOffsets(fetch::list_offsets(&b, r))),
        Request::OffsetForLeaderEpoch(r) => ready(Response::OffsetForLeaderEpoch(
            fetch::offset_for_leader_epoch(&b, r),
        )),
        Request::JoinGroup(r) => {
            let ctx = ctx.clone();
            let client_id = header.client_id.clone().unwrap_or_default();
            Box::pin(async move {
                Some(Response::JoinGroup(
                    consumer_groups::join_group(&b, &ctx, client_id, version, r).await,
                ))
            })
        }
        Request::SyncGroup(r) => Box::pin(async move {
            Some(Response::SyncGroup(
                consumer_groups::sync_group(&b, r).await,
            ))
        }),
        Request::Heartbeat(r) => ready(Response::Heartbeat(consumer_groups::heartbeat(&b, r))),
        Request::LeaveGroup(r) => ready(Response::LeaveGroup(consumer_groups::leave_group(&b, r))),
        Request::ListGroups(r) => ready(Response::ListGroups(consumer_groups::list_groups(&b, r))),
        Request::DescribeGroups(r) => ready(Response::DescribeGroups(
            consumer_groups::describe_groups(&b, r),
        )),
        Request::DeleteGroups(r) => Box::pin(async move {
            Some(Response::DeleteGroups(
                consumer_groups::delete_groups(&b, r).await,
            ))
        }),
        Request::OffsetCommit(r) => Box::pin(async move {
            Some(Response::OffsetCommit(
                consumer_groups::offset_commit(&b, r).await,
            ))
        }),
        Request::OffsetFetch(r) => {
            ready(Response::OffsetFetch(consumer_groups::offset_fetch(&b, r)))
        }
        Request::OffsetDelete(r) => Box::pin(async move {
            Some(Response::OffsetDelete(
                consumer_groups::offset_delete(&b, r).await,
            ))
        }),
        Request::InitProducerId(r) => {
            ready(Response::InitProducerId(produce::init_producer_id(&b, r)))
        }
        Request::CreateTopics(r) => {
            Box::pin(async move { Some(Response::CreateTopics(admin::create_topics(&b, r).await)) })
        }
        Request::DeleteTopics(r) => {
            Box::pin(async move { Some(Response::DeleteTopics(admin::delete_topics(&b, r).await)) })
        }
        Request::CreatePartitions(r) => Box::pin(async move {
            Some(Response::CreatePartitions(
                admin::create_partitions(&b, r).await,
            ))
        }),
        Request::DescribeConfigs(r) => {
            ready(Response::DescribeConfigs(admin::describe_configs(&b, r)))
        }
        Request::AlterConfigs(r) => ready(Response::AlterConfigs(admin::alter_configs(&b, r))),
        Request::IncrementalAlterConfigs(r) => ready(Response::IncrementalAlterConfigs(
            admin::incremental_alter_configs(&b, r),
        )),
        Request::DeleteRecords(r) => {
            Box::pin(
                async move { Some(Response::DeleteRecords(admin::delete_records(&b, r).await)) },
            )
        }
    }
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}
