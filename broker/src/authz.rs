//! Authorization: which operations a client may perform on a resource, as Kafka reports them in
//! the "authorized operations" fields of Metadata, DescribeCluster and DescribeGroups.
//!
//! Weir has no authorizer yet, and Kafka without an authorizer allows everything: it reports
//! every operation that applies to the resource type (`AclEntry.supportedOperations`). This
//! module is the one place that answers the question, so an ACL authorizer later replaces
//! [`authorized_operations`]'s body (and gains the request's principal) without touching the
//! handlers.

/// Kafka's `AclOperation` codes (the bit positions of the authorized-operations fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AclOperation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
}

/// The resource types that carry authorized operations in responses Weir serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
}

/// The operations that apply to `resource` (Kafka's `AclEntry.supportedOperations`).
pub fn supported_operations(resource: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
    }
}

/// The operations as Kafka's 32-bit field: bit `code` set for each (`Utils.to32BitField`).
pub fn bit_field(operations: &[AclOperation]) -> i32 {
    operations
        .iter()
        .fold(0i32, |bits, op| bits | (1i32 << (*op as u8)))
}

/// The authorized operations of the resource `name` of type `resource`, as a bit field. With no
/// authorizer every supported operation is allowed.
pub fn authorized_operations(resource: ResourceType, _name: &str) -> i32 {
    bit_field(supported_operations(resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_match_kafka_without_an_authorizer() {
        // READ..ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(
            authorized_operations(ResourceType::Topic, "t"),
            0b1101_1111_1000
        );
        // READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(
            authorized_operations(ResourceType::Group, "g"),
            0b1101_0100_1000
        );
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
        assert_eq!(
            authorized_operations(ResourceType::Cluster, ""),
            0b1_1111_1010_0000
        );
    }
}
