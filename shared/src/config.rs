//! Function configuration: the environment map ([`Env`], from core) and the AWS SDK
//! configuration every client is built from (from `dishpatch-sdk`).

pub use dishpatch_core::config::{ConfigError, Env};
pub use dishpatch_sdk::{endpoint_config, sdk_config};
