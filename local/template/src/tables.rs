//! DynamoDB tables: `AWS::DynamoDB::Table` and `AWS::Serverless::SimpleTable`, with
//! their keys, indexes, stream and TTL.

use serde_json::Value;

use crate::error::{invalid, TemplateError};
use crate::props::*;

/// A key attribute (`KeySchema` entry) or attribute definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    pub name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    pub name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    pub key_schema: Vec<KeyElement>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub logical_id: String,
    pub key_schema: Vec<KeyElement>,
    pub attribute_definitions: Vec<AttributeDef>,
    pub global_secondary_indexes: Vec<IndexDef>,
    pub local_secondary_indexes: Vec<IndexDef>,
    /// `StreamSpecification.StreamViewType`, when the table has a stream.
    pub stream_view_type: Option<String>,
    /// `TimeToLiveSpecification.AttributeName`, when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

fn parse_key_schema(v: Option<&Value>) -> Vec<KeyElement> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|k| KeyElement {
                    name: str_prop(k, "AttributeName").unwrap_or_default(),
                    key_type: str_prop(k, "KeyType").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_indexes(v: Option<&Value>) -> Vec<IndexDef> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| IndexDef {
                    name: str_prop(i, "IndexName").unwrap_or_default(),
                    key_schema: parse_key_schema(i.get("KeySchema")),
                    projection_type: i
                        .pointer("/Projection/ProjectionType")
                        .and_then(scalar_string)
                        .unwrap_or_else(|| "ALL".into()),
                    non_key_attributes: string_list(i.pointer("/Projection/NonKeyAttributes")),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn parse_table(id: &str, p: &Value) -> Result<TableDef, TemplateError> {
    let key_schema = parse_key_schema(p.get("KeySchema"));
    if key_schema.is_empty() {
        return Err(invalid(format!("{id}: table without KeySchema")));
    }
    let attribute_definitions = p
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| AttributeDef {
                    name: str_prop(d, "AttributeName").unwrap_or_default(),
                    attribute_type: str_prop(d, "AttributeType").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let ttl = p.get("TimeToLiveSpecification");
    let ttl_attribute = match ttl {
        Some(t) if bool_prop(t, "Enabled").unwrap_or(false) => str_prop(t, "AttributeName"),
        _ => None,
    };
    Ok(TableDef {
        logical_id: id.to_owned(),
        key_schema,
        attribute_definitions,
        global_secondary_indexes: parse_indexes(p.get("GlobalSecondaryIndexes")),
        local_secondary_indexes: parse_indexes(p.get("LocalSecondaryIndexes")),
        stream_view_type: p
            .pointer("/StreamSpecification/StreamViewType")
            .and_then(scalar_string),
        ttl_attribute,
    })
}

pub(crate) fn parse_simple_table(id: &str, p: &Value) -> Result<TableDef, TemplateError> {
    let name = p
        .pointer("/PrimaryKey/Name")
        .and_then(scalar_string)
        .unwrap_or_else(|| "id".into());
    let ty = match p.pointer("/PrimaryKey/Type").and_then(Value::as_str) {
        Some("Number") => "N",
        Some("Binary") => "B",
        _ => "S",
    };
    Ok(TableDef {
        logical_id: id.to_owned(),
        key_schema: vec![KeyElement {
            name: name.clone(),
            key_type: "HASH".into(),
        }],
        attribute_definitions: vec![AttributeDef {
            name,
            attribute_type: ty.into(),
        }],
        global_secondary_indexes: Vec::new(),
        local_secondary_indexes: Vec::new(),
        stream_view_type: None,
        ttl_attribute: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Template;

    fn t() -> Template {
        Template::embedded().expect("template.yaml parses")
    }

    #[test]
    fn tables_come_from_the_template() {
        let t = t();
        let ids: Vec<_> = t.tables.iter().map(|t| t.logical_id.as_str()).collect();
        for id in [
            "OrdersTable",
            "InventoryTable",
            "PaymentsTable",
            "DeliveryTable",
            "NotificationsTable",
            "IdempotencyTable",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        let orders = t.table("OrdersTable").unwrap();
        assert_eq!(
            orders.key_schema[0],
            KeyElement {
                name: "pk".into(),
                key_type: "HASH".into()
            }
        );
        assert_eq!(orders.key_schema[1].key_type, "RANGE");
        assert_eq!(
            orders.stream_view_type.as_deref(),
            Some("NEW_AND_OLD_IMAGES")
        );
        assert_eq!(orders.ttl_attribute.as_deref(), Some("expiresAt"));
        let gsi = &orders.global_secondary_indexes[0];
        assert_eq!(gsi.name, "gsi1");
        assert_eq!(gsi.key_schema[0].name, "gsi1pk");
        assert_eq!(gsi.projection_type, "KEYS_ONLY");
        let overdue = &orders.global_secondary_indexes[1];
        assert_eq!(overdue.name, dishpatch_core::keys::OVERDUE_INDEX);
        assert_eq!(overdue.key_schema[0].name, "sweepShard");
        assert_eq!(overdue.key_schema[1].name, "deadline");
        assert_eq!(overdue.projection_type, "KEYS_ONLY");
        // A restaurant's orders, newest first: keys that never change, written once.
        let kitchen = &orders.global_secondary_indexes[2];
        assert_eq!(kitchen.name, "gsi3");
        assert_eq!(kitchen.key_schema[0].name, "restaurantId");
        assert_eq!(kitchen.key_schema[1].name, "createdAt");
        assert_eq!(kitchen.projection_type, "KEYS_ONLY");
        assert_eq!(orders.attribute_definitions.len(), 8);

        let idem = t.table("IdempotencyTable").unwrap();
        assert_eq!(idem.key_schema.len(), 1);
        assert_eq!(idem.key_schema[0].name, "id");
        assert_eq!(idem.ttl_attribute.as_deref(), Some("expiration"));
        assert!(idem.stream_view_type.is_none());
        // The free couriers and waiting deliveries (gsi1), a courier's deliveries (gsi2).
        let delivery = t.table("DeliveryTable").unwrap();
        let names: Vec<_> = delivery
            .global_secondary_indexes
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(names, ["gsi1", "gsi2"]);
    }
}
