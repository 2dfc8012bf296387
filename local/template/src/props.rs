//! Reading properties of the template's JSON: scalars, lists, `Ref` and `Fn::GetAtt`.

use serde_json::Value;

use crate::error::{invalid, TemplateError};

pub(crate) fn str_prop(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(scalar_string)
}

/// A YAML scalar as a string (numbers and booleans too: templates mix them).
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn int_prop(v: &Value, key: &str) -> Result<Option<i64>, TemplateError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{key}: not an integer"))),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("{key}: not an integer: {s}"))),
        Some(other) => Err(invalid(format!("{key}: not an integer: {other}"))),
    }
}

pub(crate) fn bool_prop(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(scalar_string).collect())
        .unwrap_or_default()
}

/// `{"Ref": X}` -> X.
pub fn ref_target(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.get("Ref")?.as_str()
}

/// `{"Fn::GetAtt": [X, Attr]}` or `{"Fn::GetAtt": "X.Attr"}` -> (X, Attr).
pub fn get_att_target(v: &Value) -> Option<(String, String)> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    match o.get("Fn::GetAtt")? {
        Value::Array(a) if a.len() == 2 => {
            Some((a[0].as_str()?.to_owned(), a[1].as_str()?.to_owned()))
        }
        Value::String(s) => {
            let (x, attr) = s.split_once('.')?;
            Some((x.to_owned(), attr.to_owned()))
        }
        _ => None,
    }
}

/// The logical id a `GetAtt X.<attr>` points at, checking the attribute.
pub(crate) fn get_att_of(v: &Value, attr: &str, what: &str) -> Result<String, TemplateError> {
    match get_att_target(v) {
        Some((x, a)) if a == attr => Ok(x),
        _ => Err(invalid(format!(
            "{what}: expected {{Fn::GetAtt: [<LogicalId>, {attr}]}}, got {v}"
        ))),
    }
}
