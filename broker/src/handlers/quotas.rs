//! DescribeClientQuotas and AlterClientQuotas: the wire side of `quota`. The cluster
//! permissions they need (DESCRIBE_CONFIGS, ALTER_CONFIGS) are checked in `access`.

use weir_protocol::requests::{
    AlterClientQuotasRequest, DescribeClientQuotasRequest, QuotaEntityComponent,
};
use weir_protocol::responses::{
    AlterClientQuotasResponse, DescribeClientQuotasResponse, QuotaAlterationResult, QuotaEntry,
    QuotaValue,
};
use weir_protocol::ErrorCode;

use crate::broker::Broker;
use crate::quota::{QuotaChange, QuotaEntity, QuotaError, QuotaFilter};

fn error_code(e: &QuotaError) -> ErrorCode {
    match e {
        QuotaError::Invalid(_) | QuotaError::TooMany => ErrorCode::INVALID_REQUEST,
        QuotaError::Store(_) => ErrorCode::UNKNOWN_SERVER_ERROR,
    }
}

fn wire_entity(e: &QuotaEntity) -> Vec<QuotaEntityComponent> {
    e.components()
        .into_iter()
        .map(|(entity_type, entity_name)| QuotaEntityComponent {
            entity_type,
            entity_name,
        })
        .collect()
}

pub fn describe(broker: &Broker, r: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    let components: Vec<(String, i8, Option<String>)> = r
        .components
        .into_iter()
        .map(|c| (c.entity_type, c.match_type, c.match_value))
        .collect();
    match QuotaFilter::new(&components, r.strict) {
        Err(e) => DescribeClientQuotasResponse {
            error_code: error_code(&e),
            error_message: Some(e.to_string()),
            entries: None,
            ..DescribeClientQuotasResponse::default()
        },
        Ok(filter) => DescribeClientQuotasResponse {
            entries: Some(
                broker
                    .quotas
                    .describe(&filter)
                    .into_iter()
                    .map(|(entity, values)| QuotaEntry {
                        entity: wire_entity(&entity),
                        values: values
                            .into_iter()
                            .map(|(key, value)| QuotaValue { key, value })
                            .collect(),
                    })
                    .collect(),
            ),
            ..DescribeClientQuotasResponse::default()
        },
    }
}

pub async fn alter(broker: &Broker, r: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    let echoes: Vec<Vec<QuotaEntityComponent>> =
        r.entries.iter().map(|e| e.entity.clone()).collect();
    let entries = r
        .entries
        .into_iter()
        .map(|e| {
            let components: Vec<(String, Option<String>)> = e
                .entity
                .into_iter()
                .map(|c| (c.entity_type, c.entity_name))
                .collect();
            let changes = e
                .ops
                .into_iter()
                .map(|op| QuotaChange {
                    key: op.key,
                    value: (!op.remove).then_some(op.value),
                })
                .collect();
            (QuotaEntity::from_components(&components), changes)
        })
        .collect();
    let results = broker.quotas.alter(entries, r.validate_only).await;
    AlterClientQuotasResponse {
        entries: results
            .into_iter()
            .zip(echoes)
            .map(|(result, entity)| match result {
                Ok(()) => QuotaAlterationResult {
                    entity,
                    ..QuotaAlterationResult::default()
                },
                Err(e) => QuotaAlterationResult {
                    error_code: error_code(&e),
                    error_message: Some(e.to_string()),
                    entity,
                },
            })
            .collect(),
        ..AlterClientQuotasResponse::default()
    }
}
