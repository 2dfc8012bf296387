//! The card provider's runtime faults during the soak: a constant failure rate and
//! latency, and short outages at a fixed period while orders are being placed.

use std::time::{Duration, Instant};

use dishpatch_psp_sandbox::SandboxHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::SoakConfig;

/// The outages that happened.
#[derive(Debug, Clone, Default)]
pub struct Outages {
    pub count: usize,
    pub total: Duration,
}

pub struct Chaos {
    stop: watch::Sender<bool>,
    task: JoinHandle<Outages>,
}

/// Sets the failure rate and latency, and starts the outage schedule.
pub fn start(config: &SoakConfig, psp: SandboxHandle) -> Chaos {
    let mut c = psp.config();
    c.failure_rate = config.psp_failure_rate.clamp(0.0, 1.0);
    c.latency_ms = config.psp_latency.as_millis() as u64;
    c.down = false;
    if let Err(e) = psp.set_config(c) {
        tracing::warn!(error = %e, "psp sandbox refused the soak's config");
    }
    let (stop, mut stopped) = watch::channel(false);
    let every = config.psp_outage_every;
    let length = config.psp_outage;
    let task = tokio::spawn(async move {
        let mut outages = Outages::default();
        if every.is_zero() || length.is_zero() {
            let _ = stopped.changed().await;
            return outages;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopped.changed() => return outages,
            }
            set_down(&psp, true);
            let from = Instant::now();
            tracing::info!(secs = length.as_secs_f64(), "soak: card provider down");
            let stop_now = tokio::select! {
                _ = tokio::time::sleep(length) => false,
                _ = stopped.changed() => true,
            };
            set_down(&psp, false);
            outages.count += 1;
            outages.total += from.elapsed();
            tracing::info!("soak: card provider back");
            if stop_now {
                return outages;
            }
        }
    });
    Chaos { stop, task }
}

fn set_down(psp: &SandboxHandle, down: bool) {
    let mut c = psp.config();
    c.down = down;
    if let Err(e) = psp.set_config(c) {
        tracing::warn!(error = %e, "psp sandbox refused the outage switch");
    }
}

impl Chaos {
    /// Ends the schedule (an outage in progress ends now) and reports it. The failure
    /// rate and latency stay: the orders still settling see the same provider.
    pub async fn stop(self) -> Outages {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}
