//! Every sample event in events/ (ours, and AWS's own shapes in events/aws/ from
//! `scripts/aws-events`) is accepted by the handler it is named for: through the same
//! dispatch code Lambda runs, in-process; and as the dev loop runs it, each function's
//! own binary under a Lambda Runtime API with the environment file `dishpatch-local up`
//! writes for it, against a running stack.

use dishpatch::orders::{DynamoOrderStore, OrderStore};
use dishpatch_e2e::System;
use dishpatch_local::envfiles;
use dishpatch_local::testing::{moto, unique_prefix};
use dishpatch_local::LocalStackOptions;
use serde_json::Value;
use std::path::PathBuf;

/// The function a sample is for, from its file name.
fn function_for(file: &str) -> &'static str {
    for f in dishpatch_local::template::embedded_binaries() {
        if file.starts_with(&format!("{f}-")) {
            return f;
        }
    }
    panic!("events/{file} is not named after a function");
}

/// Places order o-1 (the id the samples use) directly in the table.
async fn place_sample_order(sys: &System) {
    let ddb = aws_sdk_dynamodb::Client::new(&sys.stack.sdk);
    let store = DynamoOrderStore::new(ddb, sys.stack.stack.table_name("OrdersTable"));
    let start = dishpatch::saga::start();
    let draft = dishpatch::order::Order {
        order_id: "o-1".into(),
        customer_id: "cust-1".into(),
        restaurant_id: "r-1".into(),
        items: vec![],
        total: dishpatch::money::Money::new(1900, "EUR"),
        delivery_address: serde_json::from_value(serde_json::json!(
            {"line1": "1 Main St", "city": "Lisbon", "postcode": "1000-001", "country": "PT"}
        ))
        .unwrap(),
        payment_method: dishpatch::order::PaymentMethod::Wallet,
        card_token: None,
        created_at: dishpatch::envelope::now(),
        updated_at: dishpatch::envelope::now(),
        version: 0,
        saga: start.state.clone(),
        timeline: vec![],
        deadline: None,
    };
    let (order, _) = dishpatch::orchestration::advance(
        &draft,
        &start,
        "PlaceOrder",
        None,
        &dishpatch::envelope::now(),
        &Default::default(),
    );
    store.save(&order, None, &[]).await.unwrap();
}

/// Every sample, `(name relative to events/, event)`, ours first and then AWS's shapes.
fn samples() -> Vec<(String, Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut samples = Vec::new();
    for sub in ["", "aws"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(
            files.len() >= 15,
            "expected a sample per trigger in events/{sub}, found {}",
            files.len()
        );
        for path in files {
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            let name = if sub.is_empty() {
                file
            } else {
                format!("{sub}/{file}")
            };
            let event = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            samples.push((name, event));
        }
    }
    samples
}

/// The function a sample is for, from its file name (`aws/` or not).
fn function_of(name: &str) -> &'static str {
    function_for(name.rsplit('/').next().unwrap_or(name))
}

/// The handler accepted the event: an HTTP event routed and answered (a missing resource
/// is fine, an unknown route or a server error is not; the health check is 200), a
/// schedule's sweep ran, a batch left no failures.
fn assert_accepted(name: &str, event: &Value, out: &Value) {
    if event.get("requestContext").is_some() {
        let status = out["statusCode"].as_i64().unwrap_or(0);
        assert!((200..500).contains(&status), "{name}: {out}");
        if name.ends_with("health.json") {
            assert_eq!(status, 200, "{name}: {out}");
        }
        let body = out["body"].as_str().unwrap_or("");
        assert!(!body.contains("route"), "{name}: not routed: {out}");
    } else if event["detail-type"] == "Scheduled Event" {
        assert!(out["overdue"].is_u64(), "{name}: {out}");
    } else {
        assert_eq!(
            out["batchItemFailures"],
            serde_json::json!([]),
            "{name}: {out}"
        );
    }
}

#[tokio::test]
async fn every_sample_event_is_accepted_by_its_handler() {
    let sys =
        System::start_with(LocalStackOptions::new(unique_prefix("events")).pollers(false)).await;
    place_sample_order(&sys).await;
    for (name, event) in samples() {
        let out = sys
            .stack
            .invoke(function_of(&name), event.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: invocation failed: {e:?}"));
        assert_accepted(&name, &event, &out);
    }
}

#[tokio::test]
async fn every_sample_event_is_answered_by_its_function_binary() {
    let sys =
        System::start_with(LocalStackOptions::new(unique_prefix("devloop")).pollers(false)).await;
    place_sample_order(&sys).await;
    let env_dir = std::env::temp_dir().join(format!("dishpatch-env-{}", sys.stack.stack.prefix));
    envfiles::write(&env_dir, &sys.stack.stack, moto()).unwrap();
    let samples = samples();
    for binary in dishpatch_local::template::embedded_binaries() {
        let text = std::fs::read_to_string(env_dir.join(format!("{binary}.env"))).unwrap();
        let mut function = dev_loop::Function::start(binary, &envfiles::parse(&text)).await;
        for (name, event) in samples.iter().filter(|(n, _)| function_of(n) == binary) {
            let out = function
                .invoke(event)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_accepted(name, event, &out);
        }
    }
    let _ = std::fs::remove_dir_all(&env_dir);
}

/// A function's binary as its own process under a local Lambda Runtime API, with only
/// the environment it is given (as `cargo lambda watch --env-file` runs it).
mod dev_loop {
    use dishpatch_coldstart::runtime_api::{Invocation, Report, RuntimeApi};
    use dishpatch_coldstart::Bytes;
    use serde_json::Value;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    pub struct Function {
        binary: String,
        api: RuntimeApi,
        process: Child,
        invocations: u32,
    }

    /// The workspace's debug binaries sit beside this test's `deps/` directory.
    fn binary_path(binary: &str) -> PathBuf {
        let exe = std::env::current_exe().unwrap();
        let path = exe.parent().unwrap().parent().unwrap().join(binary);
        assert!(
            path.is_file(),
            "{} is not built: cargo build -p {binary} (scripts/test builds every function first)",
            path.display()
        );
        path
    }

    impl Function {
        pub async fn start(binary: &str, env: &BTreeMap<String, String>) -> Function {
            let api = RuntimeApi::start().await.unwrap();
            let name = &env["AWS_LAMBDA_FUNCTION_NAME"];
            let process = Command::new(binary_path(binary))
                .env_clear()
                .envs(env)
                // What the Lambda service (and cargo-lambda's emulator) sets.
                .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]dev")
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{binary}: {e}"));
            Function {
                binary: binary.to_owned(),
                api,
                process,
                invocations: 0,
            }
        }

        /// The function's answer to one event, or why there is none.
        pub async fn invoke(&mut self, event: &Value) -> Result<Value, String> {
            self.invocations += 1;
            self.api
                .invoke(Invocation {
                    request_id: format!("{}-{}", self.binary, self.invocations),
                    function_arn: format!(
                        "arn:aws:lambda:us-east-1:123456789012:function:{}",
                        self.binary
                    ),
                    event: Bytes::from(serde_json::to_vec(event).unwrap()),
                })
                .await;
            let answer = async {
                loop {
                    match self.api.reports.recv().await {
                        Some(Report::Responded { body, .. }) => {
                            return serde_json::from_slice(&body).map_err(|e| e.to_string())
                        }
                        Some(Report::Failed { body }) => {
                            return Err(String::from_utf8_lossy(&body).into_owned())
                        }
                        Some(_) => continue,
                        None => return Err("the Runtime API stopped".to_owned()),
                    }
                }
            };
            match tokio::time::timeout(Duration::from_secs(60), answer).await {
                Ok(answer) => answer,
                Err(_) => Err(format!(
                    "{}: no answer within 60 s (process: {:?})",
                    self.binary,
                    self.process.try_wait()
                )),
            }
        }
    }

    impl Drop for Function {
        fn drop(&mut self) {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}
