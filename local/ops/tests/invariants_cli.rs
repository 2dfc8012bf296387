//! `dishpatch invariants check` against a stack on the emulator: clean demo data exits
//! 0; a corrupted item is named and exits non-zero; an unknown prefix is an error.

use std::process::Output;

use aws_sdk_dynamodb::types::AttributeValue as A;
use dishpatch_local::{testing, LocalStack, LocalStackOptions};

async fn run(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dishpatch"))
        .args(["invariants", "check"])
        .args(["--endpoint", testing::moto()])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("the CLI runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn the_cli_prints_a_summary_and_fails_on_violations() {
    let local = LocalStack::start(
        LocalStackOptions::new(testing::unique_prefix("cli"))
            .endpoint(testing::moto())
            .pollers(false),
    )
    .await
    .expect("local stack starts");
    let prefix = local.stack.prefix.clone();

    let ok = run(&[
        "--prefix",
        &prefix,
        "--quiescent",
        "--initial-balance",
        "alice=10000",
        "--initial-balance",
        "bob=5000",
    ])
    .await;
    let out = stdout(&ok);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("violations: 0"), "{out}");
    assert!(
        out.contains("r-1/m-1") && out.contains("courier-2"),
        "{out}"
    );

    let db = aws_sdk_dynamodb::Client::new(&local.sdk);
    db.update_item()
        .table_name(local.stack.table_name("InventoryTable"))
        .key("pk", A::S("RESTAURANT#r-1".into()))
        .key("sk", A::S("ITEM#m-3".into()))
        .update_expression("SET sold = :s")
        .expression_attribute_values(":s", A::N("5".into()))
        .send()
        .await
        .unwrap();
    let bad = run(&["--prefix", &prefix]).await;
    let out = stdout(&bad);
    assert!(!bad.status.success(), "{out}");
    assert!(out.contains("violations: 1"), "{out}");
    assert!(
        out.contains("[stock.conservation (inv. 3)] r-1/m-3"),
        "{out}"
    );
    // At rest the SOLD reservations do not account for it either.
    let out = stdout(&run(&["--prefix", &prefix, "--quiescent"]).await);
    assert!(out.contains("stock.sold-matches-reservations"), "{out}");

    let none = run(&["--prefix", "no-such-stack"]).await;
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no stack with prefix"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    local.shutdown();
}
