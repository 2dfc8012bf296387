//! The emulator wrapper (`local/moto_serial.py`) keeps how long it spent on each kind of
//! call; the load benchmark reads it to tell how busy the emulator was. Only moto runs
//! under that wrapper: on another emulator there is nothing to count.

use dishpatch_local::testing;
use serde_json::Value;

async fn busy() -> Value {
    reqwest::get(format!("{}/_dishpatch/busy", testing::moto()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn calls(v: &Value, kind: &str) -> u64 {
    v[kind][0].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn the_emulator_counts_the_calls_it_serves_and_their_time() {
    let emulator = dishpatch_emulator::Emulator::from_env();
    if emulator != dishpatch_emulator::Emulator::Moto {
        eprintln!("{}: no serial wrapper to count calls", emulator.name());
        return;
    }
    let sdk = testing::sdk().await;
    let before = busy().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    ddb.list_tables().send().await.unwrap();
    ddb.list_tables().send().await.unwrap();
    let sns = aws_sdk_sns::Client::new(&sdk);
    sns.list_topics().send().await.unwrap();
    let after = busy().await;
    // Other tests share the emulator: at least our calls were added.
    assert!(calls(&after, "DynamoDB.ListTables") >= calls(&before, "DynamoDB.ListTables") + 2);
    assert!(calls(&after, "sns.ListTopics") > calls(&before, "sns.ListTopics"));
    let secs = after["DynamoDB.ListTables"][1].as_f64().unwrap();
    assert!(secs > 0.0 && secs < 60.0, "{secs}");
}
