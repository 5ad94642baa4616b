//! Kafka's ACL model, pure: resource types, pattern types, operations and permissions with their
//! wire codes and names, ACL bindings and binding filters (as CreateAcls, DescribeAcls and
//! DeleteAcls carry them), and [`AclIndex`], the matcher that answers "may this principal, from
//! this host, perform this operation on this resource?" the way Kafka's `StandardAuthorizer`
//! does:
//!
//! - an ACL applies to a resource when its type is the resource's and its pattern is the literal
//!   name, the literal wildcard `*`, or a prefix of the name (`PREFIXED`);
//! - it applies to a request when its principal is the request's or `User:*`, and its host is the
//!   client's address or `*`;
//! - `ALL` covers every operation; an ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE,
//!   an ALLOW of ALTER_CONFIGS also allows DESCRIBE_CONFIGS (a DENY implies nothing);
//! - any matching DENY wins over every ALLOW; with no matching ALLOW the answer is no, except
//!   that a resource no ACL applies to at all (for anyone) gets the configured default
//!   (`allow.everyone.if.no.acl.found`).
//!
//! Super users are the caller's business (`authz::Authorizer`). No IO.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// The wildcard resource name and host.
pub const WILDCARD: &str = "*";
/// The principal of ACLs that apply to every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The one name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal, $kafka:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i8)]
        pub enum $name {
            $($variant = $code,)*
        }

        impl $name {
            /// The value of wire code `code` (`Unknown` for codes Kafka does not define).
            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    _ => Self::Unknown,
                }
            }

            pub fn code(self) -> i8 {
                self as i8
            }

            /// Kafka's name (`TOPIC`, `IDEMPOTENT_WRITE`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $kafka,)*
                }
            }

            /// Parses Kafka's name, case-insensitively, with or without underscores
            /// (`IDEMPOTENT_WRITE`, `IdempotentWrite`, `idempotent-write`).
            pub fn parse(s: &str) -> Option<Self> {
                let norm = |s: &str| {
                    s.chars()
                        .filter(|c| *c != '_' && *c != '-')
                        .map(|c| c.to_ascii_uppercase())
                        .collect::<String>()
                };
                let wanted = norm(s);
                [$(Self::$variant,)*]
                    .into_iter()
                    .find(|v| *v != Self::Unknown && norm(v.name()) == wanted)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " '{}'"),
                        s
                    ))
                })
            }
        }
    };
}

kafka_enum! {
    /// Kafka's `ResourceType`.
    ResourceType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
}

kafka_enum! {
    /// Kafka's `PatternType`. ACLs are LITERAL or PREFIXED; filters may also say ANY (any
    /// pattern with that exact name) or MATCH (every ACL that would apply to that name).
    PatternType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
}

kafka_enum! {
    /// Kafka's `AclOperation`; the codes are also the bit positions of the authorized-operations
    /// fields.
    AclOperation {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
}

kafka_enum! {
    /// Kafka's `AclPermissionType`.
    Permission {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
}

/// The operations that apply to a resource type (Kafka's `AclEntry.supportedOperations`): what
/// the authorized-operations fields report.
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
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Unknown | ResourceType::Any => &[],
    }
}

/// One ACL: a resource pattern and an access control entry.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`, or `User:*`.
    pub principal: String,
    /// A client address, or `*`.
    pub host: String,
    pub operation: AclOperation,
    pub permission: Permission,
}

/// Longest resource name, principal or host accepted in an ACL, in bytes (a Kafka name is far
/// shorter; this keeps the store bounded by more than the frame size).
pub const MAX_FIELD_BYTES: usize = 4096;

impl AclBinding {
    /// Whether Kafka would store this ACL; the message is Kafka's for the same refusal
    /// (`INVALID_REQUEST`).
    pub fn validate(&self) -> Result<(), String> {
        if matches!(
            self.resource_type,
            ResourceType::Unknown | ResourceType::Any
        ) {
            return Err(format!("Invalid resourceType {}", self.resource_type));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!("Invalid patternType {}", self.pattern_type));
        }
        if matches!(self.operation, AclOperation::Unknown | AclOperation::Any) {
            return Err(format!("Invalid operation {}", self.operation));
        }
        if !matches!(self.permission, Permission::Allow | Permission::Deny) {
            return Err(format!("Invalid permissionType {}", self.permission));
        }
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "Could not parse principal from `{}` (no colon is present separating the \
                     principal type from the principal name)",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return Err("Invalid empty host".into());
        }
        if [&self.resource_name, &self.principal, &self.host]
            .iter()
            .any(|f| f.len() > MAX_FIELD_BYTES)
        {
            return Err(format!("ACL fields are limited to {MAX_FIELD_BYTES} bytes"));
        }
        Ok(())
    }
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} on {}:{}:{} for {} from {}",
            self.permission,
            self.operation,
            self.resource_type,
            self.pattern_type,
            self.resource_name,
            self.principal,
            self.host
        )
    }
}

/// A filter over ACLs (DescribeAcls, DeleteAcls): `None` and `ANY` match everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: Permission,
}

impl AclFilter {
    /// Matches every ACL.
    pub fn any() -> Self {
        Self {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: Permission::Any,
        }
    }

    /// Kafka refuses filters with UNKNOWN parts (`INVALID_REQUEST`).
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
        {
            return Err("Unknown patternFilter.".into());
        }
        if self.operation == AclOperation::Unknown || self.permission == Permission::Unknown {
            return Err("Unknown entryFilter.".into());
        }
        Ok(())
    }

    /// Whether `acl` passes the filter (Kafka's `AclBindingFilter.matches`). With MATCH, an ACL
    /// passes when it would apply to the named resource: the same literal name, the literal
    /// wildcard, or a prefix of the name.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let name_ok = match &self.resource_name {
            None => true,
            Some(name) if self.pattern_type == PatternType::Match => match acl.pattern_type {
                PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&acl.resource_name),
                _ => false,
            },
            Some(name) => *name == acl.resource_name,
        };
        name_ok
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == Permission::Any || self.permission == acl.permission)
    }
}

/// Whether an ALLOW of `granted` allows `wanted` (ALL covers everything; READ, WRITE, DELETE and
/// ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
fn allow_covers(granted: AclOperation, wanted: AclOperation) -> bool {
    use AclOperation::*;
    granted == All
        || granted == wanted
        || (wanted == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && granted == AlterConfigs)
}

/// Whether a DENY of `denied` denies `wanted` (only the operation itself, or ALL).
fn deny_covers(denied: AclOperation, wanted: AclOperation) -> bool {
    denied == AclOperation::All || denied == wanted
}

/// Who is asking: the principal (`User:alice`) and the client's address.
#[derive(Clone, Debug)]
pub struct Requester {
    pub principal: String,
    pub host: IpAddr,
}

impl Requester {
    /// The principal itself, or `User:*` for any `User:` principal.
    fn principal_matches(&self, acl_principal: &str) -> bool {
        acl_principal == self.principal
            || (acl_principal == WILDCARD_PRINCIPAL && self.principal.starts_with("User:"))
    }

    /// `*`, or the client's address (compared as addresses, so `0:0:0:0:0:0:0:1`, as Java
    /// writes it, matches `::1`).
    fn host_matches(&self, acl_host: &str) -> bool {
        acl_host == WILDCARD
            || acl_host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.to_canonical() == self.host)
    }
}

/// The access control part of one ACL, as the index keeps it.
#[derive(Clone, Debug)]
struct Entry {
    principal: String,
    host: String,
    operation: AclOperation,
    permission: Permission,
}

/// The ACLs of one resource type, by pattern.
#[derive(Debug, Default)]
struct TypeIndex {
    /// LITERAL ACLs by name (the wildcard `*` included, under its own name).
    literal: HashMap<String, Vec<Entry>>,
    /// PREFIXED ACLs by prefix.
    prefixed: HashMap<String, Vec<Entry>>,
    /// The longest prefix, in bytes: a name is looked up by each of its prefixes up to it.
    longest_prefix: usize,
}

/// A set of ACLs indexed for authorization. Built once per change of the ACLs; lookups cost one
/// hash probe per prefix length of the resource name, not one per ACL.
#[derive(Debug, Default)]
pub struct AclIndex {
    by_type: HashMap<ResourceType, TypeIndex>,
    count: usize,
}

/// Result of one authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied,
    /// No ACL at all applies to the resource (for anyone): the configured default decides.
    NoAcls,
}

impl AclIndex {
    pub fn new<'a>(acls: impl IntoIterator<Item = &'a AclBinding>) -> Self {
        let mut index = AclIndex::default();
        for acl in acls {
            let t = index.by_type.entry(acl.resource_type).or_default();
            let entry = Entry {
                principal: acl.principal.clone(),
                host: acl.host.clone(),
                operation: acl.operation,
                permission: acl.permission,
            };
            match acl.pattern_type {
                PatternType::Literal => t
                    .literal
                    .entry(acl.resource_name.clone())
                    .or_default()
                    .push(entry),
                PatternType::Prefixed => {
                    t.longest_prefix = t.longest_prefix.max(acl.resource_name.len());
                    t.prefixed
                        .entry(acl.resource_name.clone())
                        .or_default()
                        .push(entry);
                }
                // Not stored (validated before): nothing to index.
                _ => continue,
            }
            index.count += 1;
        }
        index
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every ACL entry that applies to the resource, whoever it is for.
    fn applicable<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Entry> + 'a {
        let t = self.by_type.get(&resource_type);
        let literal = t.into_iter().flat_map(move |t| {
            let exact = t.literal.get(name).into_iter().flatten();
            let wildcard = (name != WILDCARD)
                .then(|| t.literal.get(WILDCARD))
                .flatten()
                .into_iter()
                .flatten();
            exact.chain(wildcard)
        });
        let prefixed = t.into_iter().flat_map(move |t| {
            let longest = t.longest_prefix.min(name.len());
            (1..=longest)
                .filter(move |&len| name.is_char_boundary(len))
                .filter_map(move |len| t.prefixed.get(&name[..len]))
                .flatten()
        });
        literal.chain(prefixed)
    }

    /// Kafka's decision for `who` performing `op` on the resource `name` of `resource_type`.
    pub fn decide(
        &self,
        who: &Requester,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        let mut any_acl = false;
        let mut allowed = false;
        for e in self.applicable(resource_type, name) {
            any_acl = true;
            if !who.principal_matches(&e.principal) || !who.host_matches(&e.host) {
                continue;
            }
            match e.permission {
                Permission::Deny if deny_covers(e.operation, op) => return Decision::Denied,
                Permission::Allow if allow_covers(e.operation, op) => allowed = true,
                _ => {}
            }
        }
        if allowed {
            Decision::Allowed
        } else if any_acl {
            Decision::Denied
        } else {
            Decision::NoAcls
        }
    }

    /// Whether `who` may perform `op` on at least one resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`, used for idempotent producers without IDEMPOTENT_WRITE): some
    /// ALLOW of theirs for `op` (or ALL) is not covered by one of their DENYs, a wildcard DENY
    /// covering all. Operations are matched exactly (no implied DESCRIBE), as in Kafka.
    pub fn allows_any(
        &self,
        who: &Requester,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let Some(t) = self.by_type.get(&resource_type) else {
            return false;
        };
        let applies = |e: &Entry| who.principal_matches(&e.principal) && who.host_matches(&e.host);
        let relevant =
            |e: &Entry| applies(e) && (e.operation == op || e.operation == AclOperation::All);
        let denied_literal: BTreeSet<&str> = t
            .literal
            .iter()
            .filter(|(_, es)| {
                es.iter()
                    .any(|e| e.permission == Permission::Deny && relevant(e))
            })
            .map(|(n, _)| n.as_str())
            .collect();
        if denied_literal.contains(WILDCARD) {
            return false;
        }
        let denied_prefixes: BTreeSet<&str> = t
            .prefixed
            .iter()
            .filter(|(_, es)| {
                es.iter()
                    .any(|e| e.permission == Permission::Deny && relevant(e))
            })
            .map(|(n, _)| n.as_str())
            .collect();
        let dominated = |name: &str| {
            (1..=name.len())
                .filter(|&len| name.is_char_boundary(len))
                .any(|len| denied_prefixes.contains(&name[..len]))
        };
        let allows = |es: &Vec<Entry>| {
            es.iter()
                .any(|e| e.permission == Permission::Allow && relevant(e))
        };
        if t.literal.get(WILDCARD).is_some_and(allows) {
            return true;
        }
        t.literal.iter().any(|(name, es)| {
            allows(es) && !denied_literal.contains(name.as_str()) && !dominated(name)
        }) || t
            .prefixed
            .iter()
            .any(|(prefix, es)| allows(es) && !dominated(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        op: AclOperation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission: perm,
        }
    }

    fn alice() -> Requester {
        Requester {
            principal: "User:alice".into(),
            host: "10.0.0.1".parse().expect("ip"),
        }
    }

    use AclOperation as Op;
    use PatternType as Pt;
    use Permission::{Allow, Deny};
    use ResourceType as Rt;

    #[test]
    fn literal_prefixed_and_wildcard_resources_apply() {
        let acls = [
            acl(
                Rt::Topic,
                "orders",
                Pt::Literal,
                "User:alice",
                Op::Read,
                Allow,
            ),
            acl(
                Rt::Topic,
                "logs-",
                Pt::Prefixed,
                "User:alice",
                Op::Write,
                Allow,
            ),
            acl(Rt::Group, "*", Pt::Literal, "User:alice", Op::Read, Allow),
        ];
        let idx = AclIndex::new(&acls);
        let a = alice();
        assert_eq!(
            idx.decide(&a, Op::Read, Rt::Topic, "orders"),
            Decision::Allowed
        );
        // A literal ACL does not match a longer name, nor a prefixed one a shorter name.
        assert_eq!(
            idx.decide(&a, Op::Read, Rt::Topic, "orders2"),
            Decision::NoAcls
        );
        assert_eq!(
            idx.decide(&a, Op::Write, Rt::Topic, "logs-app"),
            Decision::Allowed
        );
        assert_eq!(
            idx.decide(&a, Op::Write, Rt::Topic, "logs"),
            Decision::NoAcls
        );
        assert_eq!(
            idx.decide(&a, Op::Read, Rt::Group, "any-group"),
            Decision::Allowed
        );
        // ACLs exist on the resource, just not for this operation.
        assert_eq!(
            idx.decide(&a, Op::Write, Rt::Topic, "orders"),
            Decision::Denied
        );
    }

    #[test]
    fn allows_imply_describe_but_denies_imply_nothing() {
        let acls = [
            acl(Rt::Topic, "t", Pt::Literal, "User:alice", Op::Write, Allow),
            acl(
                Rt::Topic,
                "c",
                Pt::Literal,
                "User:alice",
                Op::AlterConfigs,
                Allow,
            ),
            acl(Rt::Topic, "d", Pt::Literal, "User:alice", Op::All, Allow),
            acl(Rt::Topic, "d", Pt::Literal, "User:alice", Op::Read, Deny),
        ];
        let idx = AclIndex::new(&acls);
        let a = alice();
        assert_eq!(
            idx.decide(&a, Op::Describe, Rt::Topic, "t"),
            Decision::Allowed
        );
        assert_eq!(idx.decide(&a, Op::Read, Rt::Topic, "t"), Decision::Denied);
        assert_eq!(
            idx.decide(&a, Op::DescribeConfigs, Rt::Topic, "c"),
            Decision::Allowed
        );
        assert_eq!(
            idx.decide(&a, Op::Describe, Rt::Topic, "c"),
            Decision::Denied
        );
        // DENY READ leaves DESCRIBE (allowed by ALL) alone.
        assert_eq!(
            idx.decide(&a, Op::Describe, Rt::Topic, "d"),
            Decision::Allowed
        );
        assert_eq!(idx.decide(&a, Op::Read, Rt::Topic, "d"), Decision::Denied);
    }

    #[test]
    fn principals_and_hosts_must_match() {
        let mut from_host = acl(Rt::Topic, "t", Pt::Literal, "User:*", Op::Read, Allow);
        from_host.host = "10.0.0.2".into();
        let acls = [
            acl(Rt::Topic, "t", Pt::Literal, "User:bob", Op::Read, Allow),
            from_host,
            acl(Rt::Topic, "u", Pt::Literal, "User:*", Op::Read, Allow),
        ];
        let idx = AclIndex::new(&acls);
        assert_eq!(
            idx.decide(&alice(), Op::Read, Rt::Topic, "t"),
            Decision::Denied
        );
        let other_host = Requester {
            host: "10.0.0.2".parse().expect("ip"),
            ..alice()
        };
        assert_eq!(
            idx.decide(&other_host, Op::Read, Rt::Topic, "t"),
            Decision::Allowed
        );
        assert_eq!(
            idx.decide(&alice(), Op::Read, Rt::Topic, "u"),
            Decision::Allowed
        );
        // A `Group:` principal is not a `User:` one.
        let g = Requester {
            principal: "Group:alice".into(),
            ..alice()
        };
        assert_eq!(idx.decide(&g, Op::Read, Rt::Topic, "u"), Decision::Denied);
        let java_v6 = acl(Rt::Topic, "v", Pt::Literal, "User:alice", Op::Read, Allow);
        let idx = AclIndex::new(&[AclBinding {
            host: "0:0:0:0:0:0:0:1".into(),
            ..java_v6
        }]);
        let local = Requester {
            host: "::1".parse().expect("ip"),
            ..alice()
        };
        assert_eq!(
            idx.decide(&local, Op::Read, Rt::Topic, "v"),
            Decision::Allowed
        );
    }

    #[test]
    fn filters_match_as_kafka() {
        let lit = acl(
            Rt::Topic,
            "orders",
            Pt::Literal,
            "User:alice",
            Op::Read,
            Allow,
        );
        let pre = acl(Rt::Topic, "ord", Pt::Prefixed, "User:bob", Op::Write, Deny);
        let wild = acl(Rt::Topic, "*", Pt::Literal, "User:bob", Op::Read, Allow);
        let f = |pattern_type, name: Option<&str>| AclFilter {
            resource_type: Rt::Topic,
            resource_name: name.map(String::from),
            pattern_type,
            ..AclFilter::any()
        };
        let m = f(Pt::Match, Some("orders"));
        assert!(m.matches(&lit) && m.matches(&pre) && m.matches(&wild));
        let any = f(Pt::Any, Some("orders"));
        assert!(any.matches(&lit) && !any.matches(&pre) && !any.matches(&wild));
        let prefixed = f(Pt::Prefixed, None);
        assert!(!prefixed.matches(&lit) && prefixed.matches(&pre));
        let by_principal = AclFilter {
            principal: Some("User:bob".into()),
            permission: Deny,
            ..AclFilter::any()
        };
        assert!(by_principal.matches(&pre) && !by_principal.matches(&wild));
        assert!(f(Pt::Unknown, None).validate().is_err());
    }

    #[test]
    fn bindings_are_validated_as_kafka() {
        let ok = acl(Rt::Topic, "t", Pt::Literal, "User:alice", Op::Read, Allow);
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            AclBinding {
                pattern_type: Pt::Match,
                ..ok.clone()
            },
            AclBinding {
                operation: Op::Any,
                ..ok.clone()
            },
            AclBinding {
                permission: Permission::Any,
                ..ok.clone()
            },
            AclBinding {
                resource_name: String::new(),
                ..ok.clone()
            },
            AclBinding {
                principal: "alice".into(),
                ..ok.clone()
            },
            AclBinding {
                resource_type: Rt::Cluster,
                resource_name: "c".into(),
                ..ok.clone()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b}");
        }
        let json = serde_json::to_string(&ok).expect("json");
        assert!(
            json.contains("\"TOPIC\"") && json.contains("\"ALLOW\""),
            "{json}"
        );
        let back: AclBinding = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, ok);
        assert_eq!(Op::parse("ClusterAction"), Some(Op::ClusterAction));
        assert_eq!(Op::parse("idempotent-write"), Some(Op::IdempotentWrite));
        assert_eq!(Op::parse("unknown"), None);
    }

    #[test]
    fn by_resource_type_follows_kafka() {
        let a = alice();
        let op = Op::Write;
        let idx = AclIndex::new(&[acl(Rt::Topic, "t", Pt::Literal, "User:alice", op, Allow)]);
        assert!(idx.allows_any(&a, op, Rt::Topic));
        // A literal DENY of the same name, or a prefixed DENY covering it, cancels it.
        let idx = AclIndex::new(&[
            acl(Rt::Topic, "t", Pt::Literal, "User:alice", op, Allow),
            acl(Rt::Topic, "t", Pt::Prefixed, "User:*", op, Deny),
        ]);
        assert!(!idx.allows_any(&a, op, Rt::Topic));
        let idx = AclIndex::new(&[
            acl(
                Rt::Topic,
                "logs-",
                Pt::Prefixed,
                "User:alice",
                Op::All,
                Allow,
            ),
            acl(Rt::Topic, "other", Pt::Literal, "User:alice", op, Deny),
        ]);
        assert!(idx.allows_any(&a, op, Rt::Topic));
        let idx = AclIndex::new(&[
            acl(Rt::Topic, "logs-", Pt::Prefixed, "User:alice", op, Allow),
            acl(Rt::Topic, "*", Pt::Literal, "User:alice", op, Deny),
        ]);
        assert!(!idx.allows_any(&a, op, Rt::Topic));
        // Describe is not implied here.
        let idx = AclIndex::new(&[acl(
            Rt::Topic,
            "t",
            Pt::Literal,
            "User:alice",
            Op::Read,
            Allow,
        )]);
        assert!(!idx.allows_any(&a, Op::Describe, Rt::Topic));
    }

    fn arb_op() -> impl Strategy<Value = AclOperation> {
        (2i8..=14).prop_map(AclOperation::from_code)
    }

    fn arb_acl() -> impl Strategy<Value = AclBinding> {
        (
            prop_oneof![Just(Rt::Topic), Just(Rt::Group)],
            prop_oneof![Just("*"), Just("a"), Just("ab"), Just("abc"), Just("b")],
            prop_oneof![Just(Pt::Literal), Just(Pt::Prefixed)],
            prop_oneof![Just("User:alice"), Just("User:*"), Just("User:bob")],
            prop_oneof![Just("*"), Just("10.0.0.1"), Just("10.0.0.2")],
            arb_op(),
            prop_oneof![Just(Allow), Just(Deny)],
        )
            .prop_map(|(rt, name, pt, principal, host, op, perm)| AclBinding {
                resource_type: rt,
                resource_name: name.into(),
                pattern_type: pt,
                principal: principal.into(),
                host: host.into(),
                operation: op,
                permission: perm,
            })
    }

    /// Whether `acl` applies to the request, by the rules written out plainly.
    fn applies(acl: &AclBinding, who: &Requester, op: AclOperation, rt: Rt, name: &str) -> bool {
        let resource = acl.resource_type == rt
            && match acl.pattern_type {
                Pt::Literal => acl.resource_name == name || acl.resource_name == "*",
                _ => name.starts_with(&acl.resource_name),
            };
        let entry = (acl.principal == who.principal || acl.principal == "User:*")
            && (acl.host == "*" || acl.host == who.host.to_string());
        let operation = match acl.permission {
            Deny => deny_covers(acl.operation, op),
            _ => allow_covers(acl.operation, op),
        };
        resource && entry && operation
    }

    proptest! {
        /// DENY always wins: whenever a DENY applies to the request the answer is no, however
        /// many ALLOWs apply; otherwise the answer is yes exactly when an ALLOW applies.
        #[test]
        fn deny_always_wins(
            acls in proptest::collection::vec(arb_acl(), 0..24),
            op in arb_op(),
            rt in prop_oneof![Just(Rt::Topic), Just(Rt::Group)],
            name in prop_oneof![Just("a"), Just("ab"), Just("abc"), Just("b"), Just("c")],
            bob in any::<bool>(),
        ) {
            let who = Requester {
                principal: if bob { "User:bob".into() } else { "User:alice".into() },
                host: "10.0.0.1".parse().expect("ip"),
            };
            let idx = AclIndex::new(&acls);
            let decision = idx.decide(&who, op, rt, name);
            let denied = acls.iter().any(|a| a.permission == Deny && applies(a, &who, op, rt, name));
            let allowed = acls.iter().any(|a| a.permission == Allow && applies(a, &who, op, rt, name));
            if denied {
                prop_assert_eq!(decision, Decision::Denied);
            } else if allowed {
                prop_assert_eq!(decision, Decision::Allowed);
            } else {
                prop_assert_ne!(decision, Decision::Allowed);
            }
            // Adding an ALLOW of everything for everyone never overturns a DENY.
            let mut more = acls.clone();
            more.push(acl(rt, "*", Pt::Literal, "User:*", Op::All, Allow));
            let after = AclIndex::new(&more).decide(&who, op, rt, name);
            if denied {
                prop_assert_eq!(after, Decision::Denied);
            } else {
                prop_assert_eq!(after, Decision::Allowed);
            }
        }
    }
}
