//! The short chaos soak (CI): 100 orders through the whole local stack with every fault
//! class on — handler crashes mid-batch, duplicate and delayed deliveries, card
//! declines, timeouts, errors and outages, AWS errors, throttling and lost responses,
//! a courier shortage, customer cancels, out of stock, insufficient funds — then every
//! invariant at rest. The full run is `dishpatch-local soak` (1,000 orders).
//!
//! `DISHPATCH_SOAK_ORDERS` and `DISHPATCH_SOAK_SEED` change the size and the seed.

use dishpatch_local::soak::{self, SoakConfig};
use dishpatch_local::testing::{moto, unique_prefix};

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_orders_under_every_fault_keep_every_invariant() {
    let mut config = SoakConfig::short();
    config.orders = env("DISHPATCH_SOAK_ORDERS").unwrap_or(config.orders);
    config.seed = env("DISHPATCH_SOAK_SEED").unwrap_or(config.seed);
    config.endpoint = Some(moto().to_owned());
    config.prefix = unique_prefix("soak");
    soak::quiet_injected_crashes();

    let report = soak::run(&config).await.expect("the soak runs");
    eprintln!("{report}");
    assert!(report.is_clean(), "seed {}:\n{report}", config.seed);

    // Every order was accepted and ended; the faults really happened.
    assert_eq!(report.accepted(), config.orders, "{report}");
    let by_status = report.by_status();
    let ended: usize = ["DELIVERED", "CANCELLED", "COMPENSATION_FAILED"]
        .iter()
        .map(|s| by_status.get(*s).copied().unwrap_or(0))
        .sum();
    assert_eq!(ended, config.orders, "{report}");
    assert!(
        by_status.get("DELIVERED").copied().unwrap_or(0) > 0,
        "{report}"
    );
    let i = &report.inputs;
    assert!(i.crashes > 0, "no crash was injected:\n{report}");
    let redelivered: u64 = i.counts.values().map(|c| c.redelivered).sum();
    assert!(redelivered > 0, "nothing was delivered twice:\n{report}");
    assert!(
        i.outcomes.iter().any(|o| o.cancel == Some(202)),
        "no customer cancel went through:\n{report}"
    );
    assert!(
        i.outcomes.iter().any(|o| o.plan.card.is_some()),
        "no card order:\n{report}"
    );
    let aws = i.aws.as_ref().expect("the AWS proxy is on");
    assert!(
        !aws.faults.is_empty(),
        "no AWS fault was injected:\n{report}"
    );
    assert!(
        i.outages.count > 0,
        "the card provider never went down:\n{report}"
    );
}
