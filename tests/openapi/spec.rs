//! The published contract, api/openapi.json, and checks of JSON values against it.
// Shared by two test binaries, each of which uses a part.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeSet;

pub fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/openapi.json");
    let text = std::fs::read_to_string(path).expect("api/openapi.json is readable");
    serde_json::from_str(&text).expect("api/openapi.json is JSON")
}

/// Follows a local `$ref` (`#/components/...`); anything else is returned as is.
pub fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local refs only");
            resolve(
                spec,
                spec.pointer(pointer)
                    .unwrap_or_else(|| panic!("{r} exists")),
            )
        }
        None => v,
    }
}

/// The errors of `instance` against `schema` (a schema of the spec, `$ref`s resolved
/// within the whole document, JSON Schema 2020-12 as OpenAPI 3.1 uses).
pub fn errors(spec: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = spec.clone();
    let obj = root.as_object_mut().expect("the spec is an object");
    for (k, v) in schema.as_object().expect("schemas are objects") {
        obj.insert(k.clone(), v.clone());
    }
    obj.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// `#/components/schemas/{name}`.
pub fn schema_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Asserts `instance` is valid against `schema` and names exactly the properties the
/// schema declares, in every nested object: a field the code has and the spec lacks, or
/// the other way round, fails. `instance` should set every optional field.
pub fn assert_same_fields(spec: &Value, schema: &Value, instance: &Value, at: &str) {
    let errs = errors(spec, schema, instance);
    assert!(errs.is_empty(), "{at}: {instance} is not valid: {errs:#?}");
    same_fields(spec, schema, instance, at);
}

fn same_fields(spec: &Value, schema: &Value, instance: &Value, at: &str) {
    let schema = resolve(spec, schema);
    if let Some(inner) = schema.get("allOf").and_then(|a| a.get(0)) {
        return same_fields(spec, inner, instance, at);
    }
    match instance {
        Value::Object(fields) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            let have: BTreeSet<&String> = fields.keys().collect();
            let want: BTreeSet<&String> = props.keys().collect();
            assert_eq!(
                have, want,
                "{at}: the code's fields and the spec's properties differ"
            );
            for (k, v) in fields {
                same_fields(spec, &props[k], v, &format!("{at}.{k}"));
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    same_fields(spec, s, v, &format!("{at}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

/// The operation object for `method` (lower case) on `path`.
pub fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> &'a Value {
    spec["paths"][path]
        .get(method.to_lowercase())
        .unwrap_or_else(|| panic!("{method} {path} is in the spec"))
}

/// The statuses `method path` documents.
pub fn statuses(spec: &Value, method: &str, path: &str) -> BTreeSet<u16> {
    operation(spec, method, path)["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(|s| s.parse().expect("numeric statuses"))
        .collect()
}

/// The schema documented for a response, or why there is none.
pub fn response_schema(
    spec: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
) -> Result<Value, String> {
    let resp = operation(spec, method, path)["responses"]
        .get(status.to_string())
        .ok_or_else(|| format!("{method} {path}: status {status} is not documented"))?;
    let resp = resolve(spec, resp);
    let media = content_type.split(';').next().unwrap_or("").trim();
    resp["content"]
        .get(media)
        .map(|c| c["schema"].clone())
        .ok_or_else(|| {
            format!("{method} {path} {status}: content type {media:?} is not documented")
        })
}
