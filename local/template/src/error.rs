//! What can go wrong reading or resolving a template.

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("cannot read template {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("template: {0}")]
    Invalid(String),
    #[error("template: cannot resolve {0}")]
    Unresolved(String),
}

pub(crate) fn invalid(msg: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(msg.into())
}
