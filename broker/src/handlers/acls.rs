//! DescribeAcls, CreateAcls, DeleteAcls: the wire side of `authz`. The cluster permissions they
//! need are checked in `access`; without an authorizer they answer `SECURITY_DISABLED`, as Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_protocol::requests::{
    CreateAclsRequest, DeleteAclsFilter, DeleteAclsRequest, DescribeAclsRequest,
};
use weir_protocol::responses::{
    AclCreationResult, AclDescription, CreateAclsResponse, DeleteAclsFilterResult,
    DeleteAclsMatchingAcl, DeleteAclsResponse, DescribeAclsResource, DescribeAclsResponse,
};
use weir_protocol::ErrorCode;

use crate::authz::{
    AclBinding, AclError, AclFilter, AclOperation, PatternType, Permission, ResourceType,
};
use crate::broker::Broker;

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

fn error_code(e: &AclError) -> ErrorCode {
    match e {
        AclError::Invalid(_) | AclError::TooMany => ErrorCode::INVALID_REQUEST,
        AclError::Store(_) => ErrorCode::UNKNOWN_SERVER_ERROR,
    }
}

#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type: ResourceType::from_code(resource_type),
        resource_name,
        pattern_type: PatternType::from_code(pattern_type),
        principal,
        host,
        operation: AclOperation::from_code(operation),
        permission: Permission::from_code(permission),
    }
}

pub fn describe(broker: &Broker, r: DescribeAclsRequest) -> DescribeAclsResponse {
    if !broker.authorizer.is_enabled() {
        return DescribeAclsResponse {
            error_code: ErrorCode::SECURITY_DISABLED,
            error_message: Some(NO_AUTHORIZER.into()),
            ..DescribeAclsResponse::default()
        };
    }
    let f = filter(
        r.resource_type_filter,
        r.resource_name_filter,
        r.pattern_type_filter,
        r.principal_filter,
        r.host_filter,
        r.operation,
        r.permission_type,
    );
    if let Err(message) = f.validate() {
        return DescribeAclsResponse {
            error_code: ErrorCode::INVALID_REQUEST,
            error_message: Some(message),
            ..DescribeAclsResponse::default()
        };
    }
    // Grouped by resource pattern, as Kafka answers.
    let mut by_resource: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for acl in broker.authorizer.describe(&f) {
        by_resource
            .entry((acl.resource_type, acl.resource_name, acl.pattern_type))
            .or_default()
            .push(AclDescription {
                principal: acl.principal,
                host: acl.host,
                operation: acl.operation.code(),
                permission_type: acl.permission.code(),
            });
    }
    DescribeAclsResponse {
        resources: by_resource
            .into_iter()
            .map(|((rt, name, pt), acls)| DescribeAclsResource {
                resource_type: rt.code(),
                resource_name: name,
                pattern_type: pt.code(),
                acls,
            })
            .collect(),
        ..DescribeAclsResponse::default()
    }
}

pub async fn create(broker: &Arc<Broker>, r: CreateAclsRequest) -> CreateAclsResponse {
    if !broker.authorizer.is_enabled() {
        return CreateAclsResponse {
            results: r
                .creations
                .iter()
                .map(|_| AclCreationResult {
                    error_code: ErrorCode::SECURITY_DISABLED,
                    error_message: Some(NO_AUTHORIZER.into()),
                })
                .collect(),
            ..CreateAclsResponse::default()
        };
    }
    let bindings: Vec<AclBinding> = r
        .creations
        .into_iter()
        .map(|c| AclBinding {
            resource_type: ResourceType::from_code(c.resource_type),
            resource_name: c.resource_name,
            pattern_type: PatternType::from_code(c.resource_pattern_type),
            principal: c.principal,
            host: c.host,
            operation: AclOperation::from_code(c.operation),
            permission: Permission::from_code(c.permission_type),
        })
        .collect();
    for b in &bindings {
        tracing::info!(acl = %b, "creating ACL");
    }
    let results = broker.authorizer.create(bindings).await;
    CreateAclsResponse {
        results: results
            .into_iter()
            .map(|r| match r {
                Ok(()) => AclCreationResult::default(),
                Err(e) => AclCreationResult {
                    error_code: error_code(&e),
                    error_message: Some(e.to_string()),
                },
            })
            .collect(),
        ..CreateAclsResponse::default()
    }
}

fn delete_filter(f: DeleteAclsFilter) -> AclFilter {
    filter(
        f.resource_type_filter,
        f.resource_name_filter,
        f.pattern_type_filter,
        f.principal_filter,
        f.host_filter,
        f.operation,
        f.permission_type,
    )
}

pub async fn delete(broker: &Arc<Broker>, r: DeleteAclsRequest) -> DeleteAclsResponse {
    if !broker.authorizer.is_enabled() {
        return DeleteAclsResponse {
            filter_results: r
                .filters
                .iter()
                .map(|_| DeleteAclsFilterResult {
                    error_code: ErrorCode::SECURITY_DISABLED,
                    error_message: Some(NO_AUTHORIZER.into()),
                    matching_acls: Vec::new(),
                })
                .collect(),
            ..DeleteAclsResponse::default()
        };
    }
    let filters: Vec<AclFilter> = r.filters.into_iter().map(delete_filter).collect();
    let results = broker.authorizer.delete(filters).await;
    DeleteAclsResponse {
        filter_results: results
            .into_iter()
            .map(|r| match r {
                Ok(deleted) => {
                    for acl in &deleted {
                        tracing::info!(acl = %acl, "deleted ACL");
                    }
                    DeleteAclsFilterResult {
                        error_code: ErrorCode::NONE,
                        error_message: None,
                        matching_acls: deleted
                            .into_iter()
                            .map(|a| DeleteAclsMatchingAcl {
                                error_code: ErrorCode::NONE,
                                error_message: None,
                                resource_type: a.resource_type.code(),
                                resource_name: a.resource_name,
                                pattern_type: a.pattern_type.code(),
                                principal: a.principal,
                                host: a.host,
                                operation: a.operation.code(),
                                permission_type: a.permission.code(),
                            })
                            .collect(),
                    }
                }
                Err(e) => DeleteAclsFilterResult {
                    error_code: error_code(&e),
                    error_message: Some(e.to_string()),
                    matching_acls: Vec::new(),
                },
            })
            .collect(),
        ..DeleteAclsResponse::default()
    }
}
