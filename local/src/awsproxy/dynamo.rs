//! DynamoDB request units of one call (see the parent module's docs for the rules): the
//! items before a write, read from the emulator, and the units once the answer is in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use serde_json::{json, Map, Value};

use super::units::{item_size, read_units, write_units};
use super::{Shared, TableUnits, WriteKey};

type Item = Map<String, Value>;

/// Key schemas and indexes by table name, read once.
#[derive(Default)]
pub(super) struct Schemas(Mutex<HashMap<String, Arc<Schema>>>);

#[derive(Debug, Default)]
struct Schema {
    key: Vec<String>,
    indexes: Vec<Index>,
}

#[derive(Debug)]
struct Index {
    key: Vec<String>,
    projection: Projection,
}

#[derive(Debug)]
enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

/// One write inside a call.
enum Write<'a> {
    Put { table: &'a str, item: &'a Item },
    Update { table: &'a str, key: &'a Item },
    Delete { table: &'a str, key: &'a Item },
    Check { table: &'a str, key: &'a Item },
}

impl Write<'_> {
    fn table(&self) -> &str {
        match self {
            Write::Put { table, .. }
            | Write::Update { table, .. }
            | Write::Delete { table, .. }
            | Write::Check { table, .. } => table,
        }
    }
}

impl Write<'_> {
    /// The write's kind inside its call: the action, or `TransactWriteItems.Put` and the
    /// like for one action of a transaction.
    fn label(&self, action: &str) -> String {
        let kind = match self {
            Write::Put { .. } => "Put",
            Write::Update { .. } => "Update",
            Write::Delete { .. } => "Delete",
            Write::Check { .. } => "ConditionCheck",
        };
        match action {
            "TransactWriteItems" | "BatchWriteItem" => format!("{action}.{kind}"),
            _ => action.to_owned(),
        }
    }

    /// What kind of item it writes: the key attributes' values up to their first `#`
    /// (`ORDER/ORDER`, `RESTAURANT/ITEM`, `WALLET/TX`), in the table's key order.
    fn item_kind(&self, schema: &Schema) -> String {
        let attrs = match self {
            Write::Put { item, .. } => *item,
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => {
                *key
            }
        };
        schema
            .key
            .iter()
            .filter_map(|k| {
                let (_, v) = attrs.get(k)?.as_object()?.iter().next()?;
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                Some(v.split('#').next().unwrap_or_default().to_owned())
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn obj(v: &Value) -> Option<&Item> {
    v.as_object()
}

/// The writes of a write call, in order.
fn writes<'a>(action: &str, req: &'a Value) -> Vec<Write<'a>> {
    let table = |v: &'a Value| v["TableName"].as_str().unwrap_or_default();
    let single = |v: &'a Value, kind: &str| -> Option<Write<'a>> {
        let t = table(v);
        Some(match kind {
            "Put" => Write::Put {
                table: t,
                item: obj(&v["Item"])?,
            },
            "Update" => Write::Update {
                table: t,
                key: obj(&v["Key"])?,
            },
            "Delete" => Write::Delete {
                table: t,
                key: obj(&v["Key"])?,
            },
            "ConditionCheck" => Write::Check {
                table: t,
                key: obj(&v["Key"])?,
            },
            _ => return None,
        })
    };
    match action {
        "PutItem" => single(req, "Put").into_iter().collect(),
        "UpdateItem" => single(req, "Update").into_iter().collect(),
        "DeleteItem" => single(req, "Delete").into_iter().collect(),
        "TransactWriteItems" => req["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ti| {
                let (kind, v) = ti.as_object()?.iter().next()?;
                single(v, kind)
            })
            .collect(),
        "BatchWriteItem" => req["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(t, reqs)| {
                reqs.as_array().into_iter().flatten().filter_map(move |r| {
                    if let Some(item) = obj(&r["PutRequest"]["Item"]) {
                        Some(Write::Put { table: t, item })
                    } else {
                        obj(&r["DeleteRequest"]["Key"]).map(|key| Write::Delete { table: t, key })
                    }
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The items the writes of this call will touch, as they are now (`None`: not a write).
pub(super) async fn before(
    shared: &Shared,
    headers: &HeaderMap,
    action: &str,
    body: &[u8],
) -> Option<Vec<Option<Item>>> {
    let req: Value = serde_json::from_slice(body).ok()?;
    let ws = writes(action, &req);
    if ws.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(ws.len());
    for w in &ws {
        let key = match w {
            Write::Put { table, item } => {
                let schema = schema(shared, headers, table).await;
                let key: Item = schema
                    .key
                    .iter()
                    .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                key
            }
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => {
                (*key).clone()
            }
        };
        out.push(get_item(shared, headers, w.table(), &key).await);
    }
    Some(out)
}

/// The units of a call, by table, from its request, answer and the items before.
pub(super) async fn after(
    shared: &Shared,
    headers: &HeaderMap,
    action: &str,
    body: &[u8],
    status: StatusCode,
    resp: &[u8],
    before: Option<Vec<Option<Item>>>,
) -> Vec<(String, TableUnits, Option<(WriteKey, u64)>)> {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let resp: Value = serde_json::from_slice(resp).unwrap_or(Value::Null);
    let ok = status.is_success();
    let read = |table: &str, units: f64| {
        (
            table.to_owned(),
            TableUnits {
                read: units,
                ..Default::default()
            },
            None,
        )
    };
    let factor = |consistent: &Value| {
        if consistent.as_bool() == Some(true) {
            1.0
        } else {
            0.5
        }
    };
    let table = req["TableName"].as_str().unwrap_or_default();
    match action {
        "GetItem" if ok => {
            let size = obj(&resp["Item"]).map_or(0, item_size);
            vec![read(
                table,
                read_units(size) as f64 * factor(&req["ConsistentRead"]),
            )]
        }
        "Query" | "Scan" if ok => {
            let items = resp["Items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let mut size: u64 = items.iter().filter_map(obj).map(item_size).sum();
            let (count, scanned) = (resp["Count"].as_u64(), resp["ScannedCount"].as_u64());
            if let (Some(c), Some(s)) = (count, scanned) {
                if c > 0 && s > c {
                    size = size * s / c;
                }
            }
            vec![read(
                table,
                read_units(size) as f64 * factor(&req["ConsistentRead"]),
            )]
        }
        "BatchGetItem" if ok => {
            let mut out = Vec::new();
            for (t, spec) in req["RequestItems"].as_object().into_iter().flatten() {
                let f = factor(&spec["ConsistentRead"]);
                let items = resp["Responses"][t]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let requested = spec["Keys"].as_array().map_or(0, Vec::len);
                let unprocessed = resp["UnprocessedKeys"][t]["Keys"]
                    .as_array()
                    .map_or(0, Vec::len);
                let missing = requested.saturating_sub(items.len() + unprocessed);
                let units: u64 = items
                    .iter()
                    .filter_map(obj)
                    .map(|i| read_units(item_size(i)))
                    .sum::<u64>()
                    + missing as u64;
                out.push(read(t, units as f64 * f));
            }
            out
        }
        "TransactGetItems" if ok => {
            let gets = req["TransactItems"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let items = resp["Responses"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            gets.iter()
                .enumerate()
                .map(|(i, g)| {
                    let t = g["Get"]["TableName"].as_str().unwrap_or_default();
                    let size = items
                        .get(i)
                        .and_then(|r| obj(&r["Item"]))
                        .map_or(0, item_size);
                    read(t, 2.0 * read_units(size) as f64)
                })
                .collect()
        }
        _ => write_units_of(shared, headers, action, &req, ok, &resp, before).await,
    }
}

async fn write_units_of(
    shared: &Shared,
    headers: &HeaderMap,
    action: &str,
    req: &Value,
    ok: bool,
    resp: &Value,
    before: Option<Vec<Option<Item>>>,
) -> Vec<(String, TableUnits, Option<(WriteKey, u64)>)> {
    let ws = writes(action, req);
    let before = before.unwrap_or_default();
    let code = resp["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t))
        .unwrap_or_default();
    let transactional = action == "TransactWriteItems";
    let size = |i: Option<&Item>| i.map_or(0, item_size);
    let mut out = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        let b = before.get(i).cloned().flatten();
        let bytes_written;
        let units = if ok {
            let after: Option<Item> = match w {
                Write::Put { item, .. } => Some((*item).clone()),
                Write::Update { table, key } => get_item(shared, headers, table, key).await,
                Write::Delete { .. } => None,
                Write::Check { .. } => b.clone(),
            };
            let bytes = size(b.as_ref()).max(size(after.as_ref()));
            bytes_written = bytes;
            let index_write = if matches!(w, Write::Check { .. }) {
                0.0
            } else {
                let schema = schema(shared, headers, w.table()).await;
                index_write_units(&schema, b.as_ref(), after.as_ref())
            };
            TableUnits {
                write: write_units(bytes) as f64 * if transactional { 2.0 } else { 1.0 },
                index_write,
                read: 0.0,
            }
        } else if code == "ConditionalCheckFailedException"
            || code == "TransactionCanceledException"
        {
            // The existing item (a put also weighs what it tried to write in the
            // prepare phase of a cancelled transaction).
            let tried = match w {
                Write::Put { item, .. } if transactional => item_size(item),
                _ => 0,
            };
            bytes_written = size(b.as_ref()).max(tried);
            TableUnits {
                write: write_units(bytes_written) as f64,
                ..Default::default()
            }
        } else {
            continue;
        };
        let schema = schema(shared, headers, w.table()).await;
        let mut label = w.label(action);
        if !ok {
            label.push_str(" (refused)");
        }
        let key = WriteKey {
            table: w.table().to_owned(),
            item: w.item_kind(&schema),
            action: label,
        };
        out.push((w.table().to_owned(), units, Some((key, bytes_written))));
    }
    out
}

/// Write units on the indexes for an item going from `before` to `after`.
fn index_write_units(schema: &Schema, before: Option<&Item>, after: Option<&Item>) -> f64 {
    let mut units = 0;
    for index in &schema.indexes {
        let has_key = |i: &&Item| index.key.iter().all(|k| i.contains_key(k));
        let entry = |i: &Item| -> Item {
            match &index.projection {
                Projection::All => i.clone(),
                Projection::KeysOnly | Projection::Include(_) => i
                    .iter()
                    .filter(|(k, _)| {
                        schema.key.contains(k)
                            || index.key.contains(k)
                            || matches!(&index.projection, Projection::Include(a) if a.contains(k))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }
        };
        units += match (before.filter(has_key), after.filter(has_key)) {
            (None, None) => 0,
            (Some(i), None) | (None, Some(i)) => write_units(item_size(&entry(i))),
            (Some(b), Some(a)) => {
                let (eb, ea) = (entry(b), entry(a));
                let key_changed = index.key.iter().any(|k| b.get(k) != a.get(k));
                if key_changed {
                    write_units(item_size(&eb)) + write_units(item_size(&ea))
                } else if eb != ea {
                    write_units(item_size(&eb).max(item_size(&ea)))
                } else {
                    0
                }
            }
        };
    }
    units as f64
}

/// A DynamoDB call of the proxy's own, straight to the emulator (not counted), signed
/// like the request being metered.
async fn call(shared: &Shared, headers: &HeaderMap, op: &str, body: Value) -> Option<Value> {
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("{}/", shared.upstream))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"));
    for name in [
        http::header::AUTHORIZATION.as_str(),
        "x-amz-date",
        "x-amz-security-token",
    ] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).ok()?;
    let resp = shared.client.request(req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&bytes).ok()
}

async fn get_item(shared: &Shared, headers: &HeaderMap, table: &str, key: &Item) -> Option<Item> {
    let resp = call(
        shared,
        headers,
        "GetItem",
        json!({"TableName": table, "Key": key, "ConsistentRead": true}),
    )
    .await?;
    obj(&resp["Item"]).cloned()
}

async fn schema(shared: &Shared, headers: &HeaderMap, table: &str) -> Arc<Schema> {
    if let Some(s) = shared
        .schemas
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(table)
    {
        return s.clone();
    }
    let Some(desc) = call(
        shared,
        headers,
        "DescribeTable",
        json!({"TableName": table}),
    )
    .await
    else {
        return Arc::new(Schema::default());
    };
    let names = |ks: &Value| -> Vec<String> {
        ks.as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
            .collect()
    };
    let t = &desc["Table"];
    let indexes = t["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| Index {
            key: names(&g["KeySchema"]),
            projection: match g["Projection"]["ProjectionType"].as_str() {
                Some("KEYS_ONLY") => Projection::KeysOnly,
                Some("INCLUDE") => Projection::Include(
                    g["Projection"]["NonKeyAttributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect(),
                ),
                _ => Projection::All,
            },
        })
        .collect();
    let schema = Arc::new(Schema {
        key: names(&t["KeySchema"]),
        indexes,
    });
    shared
        .schemas
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(table.to_owned(), schema.clone());
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: Value) -> Item {
        v.as_object().unwrap().clone()
    }

    fn courier_index(projection: Projection) -> Schema {
        Schema {
            key: vec!["pk".into(), "sk".into()],
            indexes: vec![Index {
                key: vec!["gsi1pk".into(), "gsi1sk".into()],
                projection,
            }],
        }
    }

    #[test]
    fn index_writes_follow_key_and_projection_changes() {
        let s = courier_index(Projection::All);
        let free = item(
            json!({"pk": {"S": "C#1"}, "sk": {"S": "C"}, "gsi1pk": {"S": "AVAILABLE"}, "gsi1sk": {"S": "1"}}),
        );
        let busy = item(json!({"pk": {"S": "C#1"}, "sk": {"S": "C"}, "status": {"S": "BUSY"}}));
        let moved = item(
            json!({"pk": {"S": "C#1"}, "sk": {"S": "C"}, "gsi1pk": {"S": "BUSY"}, "gsi1sk": {"S": "1"}}),
        );
        assert_eq!(index_write_units(&s, None, Some(&free)), 1.0, "new entry");
        assert_eq!(
            index_write_units(&s, Some(&free), Some(&busy)),
            1.0,
            "entry removed"
        );
        assert_eq!(
            index_write_units(&s, Some(&free), Some(&moved)),
            2.0,
            "key changed"
        );
        assert_eq!(
            index_write_units(&s, Some(&busy), Some(&busy)),
            0.0,
            "not indexed"
        );
        let mut touched = free.clone();
        touched.insert("name".into(), json!({"S": "x"}));
        assert_eq!(
            index_write_units(&s, Some(&free), Some(&touched)),
            1.0,
            "projected attribute"
        );
        let keys_only = courier_index(Projection::KeysOnly);
        assert_eq!(
            index_write_units(&keys_only, Some(&free), Some(&touched)),
            0.0,
            "not projected"
        );
    }

    #[test]
    fn transactions_list_every_action() {
        let req = json!({"TransactItems": [
            {"Put": {"TableName": "a", "Item": {"pk": {"S": "1"}}}},
            {"Update": {"TableName": "b", "Key": {"pk": {"S": "2"}}}},
            {"ConditionCheck": {"TableName": "c", "Key": {"pk": {"S": "3"}}}},
            {"Delete": {"TableName": "d", "Key": {"pk": {"S": "4"}}}}
        ]});
        let ws = writes("TransactWriteItems", &req);
        let tables: Vec<&str> = ws.iter().map(Write::table).collect();
        assert_eq!(tables, ["a", "b", "c", "d"]);
        assert!(writes("GetItem", &req).is_empty());
    }
}
