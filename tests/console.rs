//! The operator console in a real browser: headless Chromium opens the page of a local
//! stack that has an order on its way and a message parked, and the page it rendered
//! shows the order, the funnel, every dead-letter queue with the parked reason, the
//! payment breaker, and the selected order's trace from its recorded spans.
//!
//! Chromium is Debian's (`/usr/bin/chromium`, or `$DISHPATCH_CHROMIUM`); `.ci/run`
//! installs it. Without it the test is skipped, except in CI (`CI` set), where it fails.
//!
//! The README's screenshot comes from this test:
//!
//! ```text
//! DISHPATCH_CONSOLE_SCREENSHOT=$PWD/docs/console.png cargo test -p dishpatch-e2e --test console
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use dishpatch_e2e::System;
use dishpatch_local::testing::eventually;
use dishpatch_ops::{dlq, Target};
use serde_json::json;

/// Virtual time the page gets to run its scripts and first polls.
const PAGE_BUDGET_MS: u32 = 8000;
/// How long one Chromium run may take in real time.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(120);

/// Chromium's path, `None` (skip) when it is absent outside CI.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("DISHPATCH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the console's browser test: no Chromium at {} (.ci/run installs it)",
        path.display()
    );
    eprintln!(
        "skipping the console's browser test: no Chromium at {} (apt-get install chromium)",
        path.display()
    );
    None
}

/// Runs headless Chromium on `url` with `args` after the flags that keep it off the
/// network and out of the user's profile; its stdout.
async fn headless(chromium: &Path, url: &str, args: &[String]) -> String {
    let profile = std::env::temp_dir().join(format!("console-chromium-{}", uuid()));
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={PAGE_BUDGET_MS}"))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CHROMIUM_DEADLINE, run)
        .await
        .expect("chromium finishes")
        .expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn uuid() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )
}

/// The number in attribute `name` of the element whose attributes start with `anchor`.
fn attribute_after(dom: &str, anchor: &str, name: &str) -> Option<i64> {
    let rest = &dom[dom.find(anchor)? + anchor.len()..];
    let value = &rest[rest.find(&format!("{name}=\""))? + name.len() + 2..];
    value[..value.find('"')?].parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_orders_dead_letters_and_the_breaker_in_a_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    // As `dishpatch-local up` does: the functions' spans kept in this process, for the
    // waterfall (the log lines themselves are not this test's).
    dishpatch::logging::Logs::from_env()
        .record_spans()
        .install_to(std::io::sink);
    let sys = System::start("console").await;
    let local = &sys.stack;
    let target = Target::new(
        local.sdk.clone(),
        local.stack.template.clone(),
        local.stack.prefix.as_str(),
    );

    // One order delivered, one on its way, one cancelled: the funnel has a shape.
    let items = || json!([{"menuItemId": "m-1", "quantity": 1}]);
    let delivered = sys.place("alice", items()).await;
    let order = sys.wait_for("alice", &delivered, "DISPATCHED").await;
    let courier = order["courierId"].as_str().expect("a courier").to_owned();
    assert_eq!(sys.complete(&courier, &delivered).await.status, 200);
    sys.wait_for("alice", &delivered, "DELIVERED").await;
    let cancelled = sys.place("bob", items()).await;
    sys.cancel("bob", &cancelled).await;
    let id = sys.place("alice", items()).await;
    sys.wait_for("alice", &id, "DISPATCHED").await;

    // An undecodable message: the inventory function parks it at once.
    aws_sdk_sqs::Client::new(&local.sdk)
        .send_message()
        .queue_url(local.stack.queue_url("InventoryQueue"))
        .message_body("{this is not an envelope")
        .send()
        .await
        .unwrap();
    eventually(Duration::from_secs(30), || async {
        let list = dlq::list(&target).await.ok()?;
        list.iter()
            .any(|d| d.logical_id == "InventoryQueueDLQ" && d.count() == 1)
            .then_some(())
    })
    .await
    .expect("the poison message is parked");

    let url = format!("{}/console/", local.url());
    let dom = headless(&chromium, &url, &["--dump-dom".to_owned()]).await;

    assert!(dom.contains(&format!("data-order=\"{id}\"")), "{dom}");
    assert!(dom.contains(&format!("data-order=\"{cancelled}\"")));
    let reached = |stage: &str| {
        attribute_after(&dom, &format!("data-stage=\"{stage}\""), "data-reached")
            .unwrap_or_else(|| panic!("no funnel stage {stage} in {dom}"))
    };
    assert!(reached("PENDING") >= 3, "{dom}");
    assert!(reached("DELIVERED") >= 1, "{dom}");
    for name in dlq::dead_letter_queues(&local.stack.template).keys() {
        assert!(dom.contains(&format!("data-dlq=\"{name}\"")), "no {name}");
    }
    assert!(
        dom.contains("data-letters=\"InventoryQueueDLQ\""),
        "the parked message is listed: {dom}"
    );
    assert!(
        ["CLOSED", "HALF_OPEN", "OPEN"]
            .iter()
            .any(|s| dom.contains(&format!("data-state=\"{s}\""))),
        "the breaker's state is shown"
    );
    // The selected order's timeline, and its waterfall from the recorded spans.
    assert!(dom.contains("data-span="), "a waterfall is drawn");
    assert!(dom.contains("recorded spans"), "{dom}");
    assert!(dom.contains("class=\"live on\""), "every poll answered");
    // The saga's metrics, as the emulator's CloudWatch holds them.
    assert!(dom.contains("data-metric=\"SagaStarted\""), "{dom}");

    if let Some(path) = std::env::var_os("DISHPATCH_CONSOLE_SCREENSHOT") {
        let path = PathBuf::from(path);
        headless(
            &chromium,
            &url,
            &[
                format!("--screenshot={}", path.display()),
                "--window-size=1400,1800".to_owned(),
            ],
        )
        .await;
        assert!(path.exists(), "screenshot written to {}", path.display());
    }

    // The page's redrive: only with the console's header, and then the message moves.
    let redrive = format!("{url}api/dlqs/InventoryQueueDLQ/redrive");
    let http = reqwest::Client::new();
    let refused = http.post(&redrive).json(&json!({"all": true})).send().await;
    assert_eq!(refused.unwrap().status(), 403);
    let moved: serde_json::Value = http
        .post(&redrive)
        .header("x-dishpatch-console", "redrive")
        .json(&json!({"all": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["moved"].as_array().map(Vec::len), Some(1), "{moved}");
    assert_eq!(moved["moved"][0]["to"], "InventoryQueue");
}
