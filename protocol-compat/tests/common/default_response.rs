//! The default answer to any decoded request, used by the response round-trip tests and by the
//! fuzz target (which includes this file by path, since fuzz/ is its own workspace).

use weir_protocol::{ApiVersionsResponse, Coordinator, FindCoordinatorResponse, Request, Response};

/// A default response for `request`: every decoded request must be answerable at its own
/// version. Single-key FindCoordinator versions need exactly one coordinator, so there is one
/// per key asked; every other API (new ones included) answers `Response::default_for`.
pub fn default_response(request: &Request) -> Response {
    match request {
        Request::ApiVersions(_) => Response::ApiVersions(ApiVersionsResponse::supported()),
        Request::FindCoordinator(r) => Response::FindCoordinator(FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: r
                .keys
                .iter()
                .map(|key| Coordinator {
                    key: key.clone(),
                    ..Default::default()
                })
                .collect(),
        }),
        other => match Response::default_for(other.api_key()) {
            Some(response) => response,
            // A decoded request is always of a served API, which has a default response.
            None => panic!("no default response for api key {}", other.api_key()),
        },
    }
}
