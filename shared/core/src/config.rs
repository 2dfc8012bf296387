//! Function configuration: a plain string map, so the local stack can hand each
//! in-process function exactly the environment the template declares for it.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
#[error("missing configuration: environment variable {0} is not set")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Env(std::env::vars().collect())
    }

    pub fn from_map(map: HashMap<String, String>) -> Self {
        Env(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ConfigError(name.to_owned()))
    }
}
