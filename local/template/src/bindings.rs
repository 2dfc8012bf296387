//! Resolving intrinsics (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, ...) against the
//! provisioned resources.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{invalid, TemplateError};
use crate::props::{get_att_target, scalar_string};

/// What intrinsics resolve against: pseudo parameters, parameter values, and the
/// physical ids / attributes of provisioned resources.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    pub parameters: BTreeMap<String, String>,
    /// Logical id -> what `Ref` returns (table name, topic ARN, queue URL, ...).
    pub refs: BTreeMap<String, String>,
    /// (logical id, attribute) -> what `Fn::GetAtt` returns.
    pub attrs: BTreeMap<(String, String), String>,
}

impl Bindings {
    pub fn set_ref(&mut self, logical_id: &str, value: impl Into<String>) {
        self.refs.insert(logical_id.to_owned(), value.into());
    }

    pub fn set_attr(&mut self, logical_id: &str, attr: &str, value: impl Into<String>) {
        self.attrs
            .insert((logical_id.to_owned(), attr.to_owned()), value.into());
    }

    fn resolve_ref(&self, name: &str) -> Result<String, TemplateError> {
        match name {
            "AWS::Region" => Ok(self.region.clone()),
            "AWS::AccountId" => Ok(self.account_id.clone()),
            "AWS::Partition" => Ok("aws".into()),
            "AWS::URLSuffix" => Ok("amazonaws.com".into()),
            "AWS::StackName" => Ok(self.stack_name.clone()),
            "AWS::StackId" => Ok(format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/local",
                self.region, self.account_id, self.stack_name
            )),
            _ => self
                .parameters
                .get(name)
                .or_else(|| self.refs.get(name))
                .cloned()
                .ok_or_else(|| TemplateError::Unresolved(format!("Ref {name}"))),
        }
    }

    fn resolve_get_att(&self, id: &str, attr: &str) -> Result<String, TemplateError> {
        self.attrs
            .get(&(id.to_owned(), attr.to_owned()))
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved(format!("Fn::GetAtt {id}.{attr}")))
    }

    /// Resolves every intrinsic in `v`.
    pub fn resolve(&self, v: &Value) -> Result<Value, TemplateError> {
        match v {
            Value::Array(a) => Ok(Value::Array(
                a.iter()
                    .map(|x| self.resolve(x))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Value::Object(o) => {
                if o.len() == 1 {
                    let (k, arg) = o.iter().next().expect("one entry");
                    match k.as_str() {
                        "Ref" => {
                            let name = arg
                                .as_str()
                                .ok_or_else(|| invalid(format!("Ref of a non-string: {arg}")))?;
                            return self.resolve_ref(name).map(Value::String);
                        }
                        "Fn::GetAtt" => {
                            let (id, attr) = get_att_target(v)
                                .ok_or_else(|| invalid(format!("bad Fn::GetAtt: {arg}")))?;
                            return self.resolve_get_att(&id, &attr).map(Value::String);
                        }
                        "Fn::Sub" => return self.sub(arg).map(Value::String),
                        "Fn::Join" => {
                            let a = arg
                                .as_array()
                                .filter(|a| a.len() == 2)
                                .ok_or_else(|| invalid(format!("bad Fn::Join: {arg}")))?;
                            let sep = a[0].as_str().unwrap_or_default();
                            let items = self.resolve(&a[1])?;
                            let items = items
                                .as_array()
                                .ok_or_else(|| invalid(format!("bad Fn::Join list: {arg}")))?
                                .iter()
                                .map(|x| scalar_string(x).unwrap_or_default())
                                .collect::<Vec<_>>();
                            return Ok(Value::String(items.join(sep)));
                        }
                        "Fn::Select" => {
                            let a = arg
                                .as_array()
                                .filter(|a| a.len() == 2)
                                .ok_or_else(|| invalid(format!("bad Fn::Select: {arg}")))?;
                            let idx = scalar_string(&self.resolve(&a[0])?)
                                .and_then(|s| s.parse::<usize>().ok())
                                .ok_or_else(|| invalid(format!("bad Fn::Select index: {arg}")))?;
                            let list = self.resolve(&a[1])?;
                            return list
                                .as_array()
                                .and_then(|l| l.get(idx))
                                .cloned()
                                .ok_or_else(|| invalid(format!("Fn::Select out of range: {arg}")));
                        }
                        "Fn::Split" => {
                            let a = arg
                                .as_array()
                                .filter(|a| a.len() == 2)
                                .ok_or_else(|| invalid(format!("bad Fn::Split: {arg}")))?;
                            let sep = a[0].as_str().unwrap_or_default();
                            let s = scalar_string(&self.resolve(&a[1])?).unwrap_or_default();
                            return Ok(Value::Array(
                                s.split(sep).map(|p| Value::String(p.to_owned())).collect(),
                            ));
                        }
                        k if k.starts_with("Fn::") => {
                            return Err(invalid(format!("intrinsic {k} is not supported locally")))
                        }
                        _ => {}
                    }
                }
                let mut out = Map::new();
                for (k, x) in o {
                    out.insert(k.clone(), self.resolve(x)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Resolves to a string (numbers and booleans are rendered as text, like
    /// Lambda environment variables).
    pub fn resolve_string(&self, v: &Value) -> Result<String, TemplateError> {
        let r = self.resolve(v)?;
        scalar_string(&r).ok_or_else(|| invalid(format!("expected a string, got {r}")))
    }

    fn sub(&self, arg: &Value) -> Result<String, TemplateError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(a) if a.len() == 2 => (
                a[0].as_str()
                    .ok_or_else(|| invalid(format!("bad Fn::Sub: {arg}")))?,
                a[1].as_object(),
            ),
            _ => return Err(invalid(format!("bad Fn::Sub: {arg}"))),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| invalid(format!("unterminated ${{ in Fn::Sub: {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.resolve_string(v)?);
            } else if let Some((id, attr)) = name.split_once('.') {
                out.push_str(&self.resolve_get_att(id, attr)?);
            } else {
                out.push_str(&self.resolve_ref(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intrinsics_resolve() {
        let mut b = Bindings {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
            stack_name: "s".into(),
            ..Default::default()
        };
        b.set_ref("Q", "https://q/url");
        b.set_attr("Q", "Arn", "arn:aws:sqs:eu-west-1:123456789012:s-Q");
        assert_eq!(
            b.resolve_string(&json!({"Ref": "Q"})).unwrap(),
            "https://q/url"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::GetAtt": ["Q", "Arn"]}))
                .unwrap(),
            "arn:aws:sqs:eu-west-1:123456789012:s-Q"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::GetAtt": "Q.Arn"})).unwrap(),
            "arn:aws:sqs:eu-west-1:123456789012:s-Q"
        );
        assert_eq!(
            b.resolve_string(
                &json!({"Fn::Sub": "x-${AWS::Region}-${AWS::AccountId}-${Q}-${Q.Arn}-${!Lit}"})
            )
            .unwrap(),
            "x-eu-west-1-123456789012-https://q/url-arn:aws:sqs:eu-west-1:123456789012:s-Q-${Lit}"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::Sub": ["${A}/${Q}", {"A": {"Ref": "AWS::Region"}}]}))
                .unwrap(),
            "eu-west-1/https://q/url"
        );
        assert_eq!(
            b.resolve_string(&json!({"Fn::Join": [":", ["a", {"Ref": "Q"}]]}))
                .unwrap(),
            "a:https://q/url"
        );
        assert!(matches!(
            b.resolve(&json!({"Ref": "Missing"})),
            Err(TemplateError::Unresolved(_))
        ));
        assert_eq!(b.resolve_string(&json!(10)).unwrap(), "10");
    }
}
