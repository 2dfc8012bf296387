//! The customers and couriers: places the orders over the HTTP API with bounded
//! concurrency, cancels some at a random moment, delivers what gets dispatched, and
//! follows each order until it is terminal (or its deadline passes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dishpatch_psp_sandbox::tokens as cards;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::setup::{ITEMS, SCARCE_ITEM};
use super::{SoakConfig, World};
use crate::esm::SplitMix64;
use crate::{tokens, LocalStack};

/// What one order is meant to go through, drawn up front from the seed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub index: usize,
    pub customer: String,
    pub lines: Vec<(String, u32)>,
    /// The card token, for a card order.
    pub card: Option<&'static str>,
    pub cancel_after: Option<Duration>,
    pub courier_delay: Duration,
}

/// How one order went, as its customer saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    /// The status of the placing request (0: no answer).
    pub placed: u16,
    pub order_id: Option<String>,
    /// The status of the cancel request, if one was made.
    pub cancel: Option<u16>,
    /// A courier marked it delivered.
    pub completed: bool,
    /// The last status seen (empty if never read).
    pub last_status: String,
    /// Placing it to its terminal state (or giving up).
    pub took: Duration,
}

pub fn plans(config: &SoakConfig, world: &World) -> Vec<Plan> {
    let mut rng = SplitMix64::new(config.seed.wrapping_add(0x5eed));
    let p = |rng: &mut SplitMix64, share: f64| unit(rng) < share;
    (0..config.orders)
        .map(|index| {
            let customer =
                world.customers[rng.below(world.customers.len() as u64) as usize].clone();
            let mut lines = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let (id, _, _) = ITEMS[rng.below(ITEMS.len() as u64) as usize];
                if !lines.iter().any(|(l, _): &(String, u32)| l == id) {
                    lines.push((id.to_owned(), 1 + rng.below(3) as u32));
                }
            }
            if p(&mut rng, config.scarce_share) {
                lines.push((SCARCE_ITEM.to_owned(), 1 + rng.below(2) as u32));
            }
            let card = p(&mut rng, config.card_share).then(|| {
                let r = unit(&mut rng);
                let mut edge = config.decline_share;
                if r < edge {
                    return if rng.chance(1, 2) {
                        cards::DECLINE_FUNDS
                    } else {
                        cards::DECLINE_STOLEN
                    };
                }
                for (share, token) in [
                    (config.charge_then_timeout_share, cards::CHARGE_THEN_TIMEOUT),
                    (config.timeout_share, cards::TIMEOUT),
                    (config.error_token_share, cards::ERROR),
                ] {
                    edge += share;
                    if r < edge {
                        return token;
                    }
                }
                cards::VISA
            });
            let cancel_after =
                p(&mut rng, config.cancel_share).then(|| rng.duration_up_to(config.cancel_within));
            let courier_delay = rng.duration_up_to(config.courier_delay_max);
            Plan {
                index,
                customer,
                lines,
                card,
                cancel_after,
                courier_delay,
            }
        })
        .collect()
}

/// Uniform in `[0, 1)`.
fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs every order; returns their outcomes in plan order.
pub async fn run(config: &SoakConfig, local: &LocalStack, world: &World) -> Vec<Outcome> {
    let client = Arc::new(Client::new(local.url()));
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    // The longest an order can legitimately take: every step timing out, then every
    // undo try, plus room for a loaded emulator.
    let deadline = Duration::from_secs(
        u64::from(config.step_timeout_secs) * 3
            + u64::from(config.compensation_timeout_secs) * 4
            + 120,
    );
    let mut tasks = tokio::task::JoinSet::new();
    let total = config.orders;
    for plan in plans(config, world) {
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let task_client = client.clone();
        let seed = config.seed;
        tasks.spawn(async move {
            let out = follow(&task_client, plan, seed, deadline).await;
            drop(permit);
            out
        });
        // Reap finished tasks as we go, so progress can be logged.
        while let Some(Ok(o)) = tasks.try_join_next() {
            client.done(o, total);
        }
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(o) => client.done(o, total),
            Err(e) => tracing::error!(error = %e, "soak: an order task failed"),
        }
    }
    let mut out = std::mem::take(&mut *client.outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    out.sort_by_key(|o| o.plan.index);
    out
}

const TERMINAL: &[&str] = &["DELIVERED", "CANCELLED", "COMPENSATION_FAILED"];

/// Whether the customer (and courier) stop following an order: once it is terminal;
/// past `deadline` unless a courier may still have to deliver it; past twice `deadline`
/// in any case. Only its courier ends a dispatched order (it has no saga deadline), and
/// on a loaded machine the stack may pay for or dispatch an order after `deadline`: a
/// driver that gave up then would leave it DISPATCHED for good, the soak's own doing.
pub(super) fn stop_following(
    status: &str,
    completed: bool,
    elapsed: Duration,
    deadline: Duration,
) -> bool {
    if TERMINAL.contains(&status) || elapsed >= deadline * 2 {
        return true;
    }
    let courier_may_be_needed = matches!(status, "RESERVED" | "PAID" | "DISPATCHED") && !completed;
    elapsed >= deadline && !courier_may_be_needed
}

async fn follow(client: &Client, plan: Plan, seed: u64, deadline: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome {
        plan: plan.clone(),
        placed: 0,
        order_id: None,
        cancel: None,
        completed: false,
        last_status: String::new(),
        took: Duration::ZERO,
    };
    let mut body = json!({
        "restaurantId": crate::seed::RESTAURANT_ID,
        "items": plan.lines.iter().map(|(m, q)| json!({"menuItemId": m, "quantity": q})).collect::<Vec<_>>(),
        "deliveryAddress": {"line1": "1 Rua Augusta", "city": "Lisbon", "postcode": "1100-048", "country": "PT"},
        "paymentMethod": "WALLET",
    });
    if let Some(t) = plan.card {
        body["paymentMethod"] = json!("CARD");
        body["cardToken"] = json!(t);
    }
    let key = format!("soak-{seed}-{}", plan.index);
    let place = Call::customer("POST", "/v1/orders", &plan.customer).with_body(&body, &key);
    let (status, reply) = client.send_retrying(&place).await;
    out.placed = status;
    let Some(id) = reply["orderId"].as_str().filter(|_| status == 201) else {
        if status != 201 {
            tracing::warn!(index = plan.index, status, body = %reply, "soak: order not accepted");
        }
        out.took = start.elapsed();
        return out;
    };
    out.order_id = Some(id.to_owned());
    let path = format!("/v1/orders/{id}");
    let cancel_at = plan.cancel_after.map(|d| start + d);
    let mut rng = SplitMix64::new(seed ^ plan.index as u64);
    let mut dispatched_at: Option<Instant> = None;
    // Polls slow down while nothing changes (each is a read of the single-threaded
    // emulator) and speed up again when the status moves.
    let mut every = Duration::from_millis(800);
    loop {
        let now = Instant::now();
        if cancel_at.is_some_and(|at| at <= now) && out.cancel.is_none() {
            let cancel = Call::customer("DELETE", &path, &plan.customer);
            let (s, _) = client.send_retrying(&cancel).await;
            out.cancel = Some(s);
        }
        let (s, o) = client
            .send(&Call::customer("GET", &path, &plan.customer))
            .await;
        if s == 200 {
            let status = o["status"].as_str().unwrap_or_default();
            every = if status == out.last_status {
                (every * 3 / 2).min(Duration::from_secs(4))
            } else {
                Duration::from_millis(800)
            };
            out.last_status = status.to_owned();
        }
        if stop_following(&out.last_status, out.completed, start.elapsed(), deadline) {
            break;
        }
        if out.last_status == "DISPATCHED" && !out.completed {
            let since = *dispatched_at.get_or_insert(now);
            if since.elapsed() >= plan.courier_delay {
                if let Some(courier) = o["courierId"].as_str() {
                    let path = format!("/v1/deliveries/{id}/complete");
                    let complete = Call {
                        role: "COURIER",
                        ..Call::customer("POST", &path, courier)
                    };
                    let (s, b) = client.send(&complete).await;
                    if s == 200 {
                        out.completed = true;
                    } else {
                        tracing::warn!(order_id = id, status = s, body = %b, "soak: delivery not completed; will retry");
                    }
                }
            }
        }
        // Slow polls: the emulator serves one request at a time.
        let mut pause = every + Duration::from_millis(rng.below(400));
        if let Some(at) = cancel_at.filter(|_| out.cancel.is_none()) {
            pause = pause.min(at.saturating_duration_since(Instant::now()));
        }
        if let Some(at) = dispatched_at.filter(|_| !out.completed) {
            pause = pause.min((at + plan.courier_delay).saturating_duration_since(Instant::now()));
        }
        tokio::time::sleep(pause.max(Duration::from_millis(50))).await;
    }
    out.took = start.elapsed();
    out
}

/// One API request: what, who sends it (with which role), and its body and
/// idempotency key.
struct Call<'a> {
    method: &'static str,
    path: &'a str,
    sub: &'a str,
    role: &'static str,
    body: Option<&'a Value>,
    key: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A customer's request, without a body.
    fn customer(method: &'static str, path: &'a str, customer: &'a str) -> Self {
        Call {
            method,
            path,
            sub: customer,
            role: "CUSTOMER",
            body: None,
            key: None,
        }
    }

    fn with_body(self, body: &'a Value, key: &'a str) -> Self {
        Call {
            body: Some(body),
            key: Some(key),
            ..self
        }
    }
}

/// The HTTP side: tokens minted once per caller, every outcome collected.
struct Client {
    base: String,
    http: reqwest::Client,
    tokens: std::sync::Mutex<HashMap<(String, String), String>>,
    outcomes: std::sync::Mutex<Vec<Outcome>>,
    started: Instant,
}

impl Client {
    fn new(base: String) -> Client {
        Client {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
            tokens: Default::default(),
            outcomes: Default::default(),
            started: Instant::now(),
        }
    }

    fn done(&self, o: Outcome, total: usize) {
        let mut all = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        all.push(o);
        let n = all.len();
        if n.is_multiple_of(50) || n == total {
            let secs = self.started.elapsed().as_secs_f64();
            tracing::info!(done = n, total, secs, "soak: orders settled");
            eprintln!(
                "soak: {n}/{total} orders followed to the end ({secs:.0} s, {:.2} orders/s)",
                n as f64 / secs.max(0.001)
            );
        }
    }

    fn token(&self, sub: &str, role: &str) -> String {
        let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        t.entry((sub.to_owned(), role.to_owned()))
            .or_insert_with(|| tokens::mint(sub, &[role]).unwrap_or_default())
            .clone()
    }

    /// Retries what a careful client retries: no answer, 5xx, 429, and 409
    /// `REQUEST_IN_PROGRESS` (the same idempotency key makes a POST safe to repeat).
    async fn send_retrying(&self, call: &Call<'_>) -> (u16, Value) {
        let mut pause = Duration::from_millis(200);
        let mut last = (0, Value::Null);
        for _ in 0..10 {
            last = self.send(call).await;
            let (s, b) = &last;
            let in_progress = *s == 409 && b["code"] == "REQUEST_IN_PROGRESS";
            if !(*s == 0 || *s >= 500 || *s == 429 || in_progress) {
                return last;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(3));
        }
        last
    }

    async fn send(&self, call: &Call<'_>) -> (u16, Value) {
        let method = call.method.parse().unwrap_or(reqwest::Method::GET);
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, call.path))
            .bearer_auth(self.token(call.sub, call.role));
        if let Some(b) = call.body {
            req = req.json(b);
        }
        if let Some(k) = call.key {
            req = req.header("Idempotency-Key", k);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispatched_order_is_followed_past_the_deadline_until_its_courier_delivers_it() {
        let deadline = Duration::from_secs(189);
        let late = deadline + Duration::from_secs(50);
        // Before the deadline: followed until terminal.
        assert!(!stop_following(
            "PENDING",
            false,
            Duration::from_secs(5),
            deadline
        ));
        assert!(stop_following(
            "DELIVERED",
            true,
            Duration::from_secs(5),
            deadline
        ));
        assert!(stop_following("CANCELLED", false, late, deadline));
        // Past it: an order a courier may still have to deliver is followed on (it was
        // dispatched late, under load), one that can only wait on the stack is not.
        assert!(!stop_following("DISPATCHED", false, late, deadline));
        assert!(!stop_following("PAID", false, late, deadline));
        assert!(!stop_following("RESERVED", false, late, deadline));
        assert!(stop_following("DISPATCHED", true, late, deadline));
        assert!(stop_following("CANCELLING", false, late, deadline));
        assert!(stop_following("PENDING", false, late, deadline));
        // And never forever.
        assert!(stop_following("DISPATCHED", false, deadline * 2, deadline));
    }
}
