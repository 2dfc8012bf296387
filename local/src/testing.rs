//! Test helpers: one moto server per test process, unique prefixes, polling with a
//! deadline.
//!
//! ```no_run
//! # async fn t() {
//! use dishpatch_local::{testing, LocalStack, LocalStackOptions};
//! let local = LocalStack::start(
//!     LocalStackOptions::new(testing::unique_prefix("saga")).endpoint(testing::moto()),
//! )
//! .await
//! .unwrap();
//! # }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

/// The emulator endpoint for tests: `AWS_ENDPOINT_URL` when set, otherwise a moto
/// server started once for this process ([`dishpatch_emulator::endpoint`]).
pub fn moto() -> &'static str {
    dishpatch_emulator::endpoint()
}

/// A prefix no other test (or test run) uses: `t<8 hex>-<name>`, within 40 characters.
pub fn unique_prefix(name: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    format!("t{}-{clean}", &id[..8])
}

/// An SDK configuration for the test emulator.
pub async fn sdk() -> aws_config::SdkConfig {
    crate::sdk::emulator_config(Some(moto())).await
}

/// Polls `f` until it returns `Some` or `timeout` passes (then `None`). Polls every
/// 25 ms, growing to 250 ms.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(25);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Creates an on-demand table keyed by a string `pk`: the scratch table of the proxy
/// tests and of the benchmark's emulator ceiling.
pub async fn create_pk_table(ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let attribute = AttributeDefinition::builder()
        .attribute_name("pk")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())?;
    let key = KeySchemaElement::builder()
        .attribute_name("pk")
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| e.to_string())?;
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute)
        .key_schema(key)
        .send()
        .await
        .map(drop)
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}
