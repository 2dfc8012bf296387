//! The HTTP adapter against a tiny in-test HTTP/1.1 server on loopback: status mapping,
//! headers, timeouts, retries, the breaker and the deadline. Waits between retries run
//! on a [`ManualClock`] (instant, recorded); per-attempt timeouts are real but short.

use super::*;
use dishpatch::resilience::{BreakerState, ManualClock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "test-psp-key";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Value,
}

#[derive(Debug, Clone)]
enum Reply {
    Json(u16, Value),
    Text(u16, &'static str),
    /// Never answers (until the test ends).
    Hang,
}

type Script = Box<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Answers the `n`th request (0-based) with `script(n, request)`.
    async fn start(script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(Box::new(script));
        let count = Arc::new(AtomicUsize::new(0));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (script, count, log) = (script.clone(), count.clone(), log.clone());
                tokio::spawn(async move {
                    serve(stream, script, count, log).await;
                });
            }
        });
        Server { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// One request per connection (`Connection: close`).
async fn serve(
    mut stream: TcpStream,
    script: Arc<Script>,
    count: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let path = request_line.next().unwrap_or("").to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
    let seen = Seen {
        method,
        path,
        headers,
        body,
    };
    let n = count.fetch_add(1, Ordering::SeqCst);
    log.lock().unwrap().push(seen.clone());
    let (status, text) = match script(n, &seen) {
        Reply::Json(status, v) => (status, v.to_string()),
        Reply::Text(status, t) => (status, t.to_owned()),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
    };
    let resp = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn captured(id: &str) -> Reply {
    Reply::Json(
        201,
        json!({"chargeId": id, "status": "CAPTURED", "amount": 1200, "currency": "EUR"}),
    )
}

fn config(url: &str) -> PspConfig {
    PspConfig {
        // Short real timeouts; generous budget so only the tests that mean to hit the
        // deadline do.
        policy: RetryPolicy {
            attempt_timeout: Duration::from_millis(300),
            ..RetryPolicy::default()
        },
        default_budget: Duration::from_secs(30),
        ..PspConfig::new(url)
    }
}

fn provider_with(config: PspConfig) -> (HttpPaymentProvider<Arc<ManualClock>>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(Duration::from_secs(1_000)));
    let p = HttpPaymentProvider::with_clock(
        config,
        ApiKey::Static(KEY.into()),
        clock.clone(),
        clock.clone(),
    )
    .unwrap()
    // Quiet: no EMF lines from tests.
    .on_transition(|_| {});
    (p, clock)
}

fn provider(server: &Server) -> (HttpPaymentProvider<Arc<ManualClock>>, Arc<ManualClock>) {
    provider_with(config(&server.url))
}

fn charge() -> Charge {
    Charge::for_order("o-1", Money::new(1200, "EUR"), "tok_visa")
}

#[tokio::test]
async fn a_capture_sends_the_contract_and_reads_the_charge() {
    let server = Server::start(|_, _| captured("ch_1")).await;
    let (p, clock) = provider(&server);
    let outcome = p.authorize_capture(&charge()).await.unwrap();
    assert_eq!(
        outcome,
        ChargeOutcome::Captured {
            charge_id: "ch_1".into()
        }
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/charges")
    );
    assert_eq!(r.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(r.headers["idempotency-key"], "o-1:capture");
    assert!(r.headers["content-type"].starts_with("application/json"));
    assert_eq!(
        r.body,
        json!({"amount": 1200, "currency": "EUR", "cardToken": "tok_visa", "reference": "o-1"})
    );
    assert!(clock.slept().is_empty());
    assert_eq!(p.breaker().state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_replayed_charge_answered_200_is_the_same_capture() {
    let server = Server::start(|_, _| {
        Reply::Json(
            200,
            json!({"chargeId": "ch_9", "status": "CAPTURED", "amount": 1200, "currency": "EUR"}),
        )
    })
    .await;
    let (p, _) = provider(&server);
    assert_eq!(
        p.authorize_capture(&charge()).await.unwrap(),
        ChargeOutcome::Captured {
            charge_id: "ch_9".into()
        }
    );
}

#[tokio::test]
async fn declines_are_answers_never_retried() {
    for (reply, code) in [
        (
            Reply::Json(
                402,
                json!({"status": "DECLINED", "code": "insufficient_funds"}),
            ),
            "insufficient_funds",
        ),
        (
            Reply::Json(402, json!({"status": "DECLINED", "code": "card_stolen"})),
            "card_stolen",
        ),
        // A decline without a readable body is still a decline.
        (Reply::Text(402, "nope"), "card_declined"),
        // A code that is not a plain token is not repeated into reasons and logs.
        (
            Reply::Json(402, json!({"status": "DECLINED", "code": "x y\nz"})),
            "card_declined",
        ),
        // Refused before anything happened (an unknown token): repeating cannot help.
        (
            Reply::Json(400, json!({"code": "unknown_card_token", "message": "?"})),
            "unknown_card_token",
        ),
    ] {
        let server = Server::start(move |_, _| reply.clone()).await;
        let (p, clock) = provider(&server);
        assert_eq!(
            p.authorize_capture(&charge()).await.unwrap(),
            ChargeOutcome::Declined { code: code.into() }
        );
        assert_eq!(server.count(), 1, "{code}: no retry");
        assert!(clock.slept().is_empty());
        // A decline is a healthy provider: it never counts against the breaker.
        assert_eq!(p.breaker().snapshot().failures_in_window, 0);
    }
}

#[tokio::test]
async fn a_503_is_retried_with_backoff_and_the_same_key_until_it_succeeds() {
    let server = Server::start(|n, _| {
        if n < 2 {
            Reply::Json(503, json!({"code": "unavailable"}))
        } else {
            captured("ch_1")
        }
    })
    .await;
    let (p, clock) = provider(&server);
    assert_eq!(
        p.authorize_capture(&charge()).await.unwrap(),
        ChargeOutcome::Captured {
            charge_id: "ch_1".into()
        }
    );
    let keys: Vec<String> = server
        .seen()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys, vec!["o-1:capture"; 3]);
    // 500 ms then 1 s, each ±20 %.
    let slept = clock.slept();
    assert_eq!(slept.len(), 2, "{slept:?}");
    assert!((400..600).contains(&slept[0].as_millis()), "{slept:?}");
    assert!((800..1200).contains(&slept[1].as_millis()), "{slept:?}");
}

#[tokio::test]
async fn statuses_408_429_and_5xx_are_retried_other_errors_are_refused() {
    for status in [408u16, 429, 500, 502, 504] {
        let server = Server::start(move |n, _| {
            if n == 0 {
                Reply::Json(status, json!({}))
            } else {
                captured("ch_1")
            }
        })
        .await;
        let (p, _) = provider(&server);
        assert!(
            p.authorize_capture(&charge()).await.is_ok(),
            "{status} then 201"
        );
        assert_eq!(server.count(), 2, "{status}");
    }
    for status in [401u16, 403, 404, 409, 422] {
        let server = Server::start(move |_, _| Reply::Json(status, json!({"code": "x"}))).await;
        let (p, _) = provider(&server);
        match p.authorize_capture(&charge()).await {
            Err(ProviderError::Refused { status: s, .. }) => assert_eq!(s, status),
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(server.count(), 1, "{status}: not retried");
    }
}

#[tokio::test]
async fn every_attempt_failing_ends_unavailable_after_three_retries() {
    let server = Server::start(|_, _| Reply::Json(503, json!({}))).await;
    let (p, clock) = provider(&server);
    match p.authorize_capture(&charge()).await {
        Err(ProviderError::Unavailable(e)) => assert!(e.contains("503"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count(), 4);
    assert_eq!(clock.slept().len(), 3);
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_transient() {
    let server = Server::start(|n, _| if n < 3 { Reply::Hang } else { captured("ch_1") }).await;
    let (p, _) = provider(&server);
    let started = std::time::Instant::now();
    // Three timeouts, then the answer.
    assert_eq!(
        p.authorize_capture(&charge()).await.unwrap(),
        ChargeOutcome::Captured {
            charge_id: "ch_1".into()
        }
    );
    assert_eq!(server.count(), 4);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Hanging every time: unavailable, as a timeout.
    let server = Server::start(|_, _| Reply::Hang).await;
    let (p, _) = provider(&server);
    match p.authorize_capture(&charge()).await {
        Err(ProviderError::Unavailable(e)) => assert!(e.contains("timeout"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn no_answer_at_all_is_transient() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (p, _) = provider_with(config(&url));
    match p.authorize_capture(&charge()).await {
        Err(ProviderError::Unavailable(e)) => assert!(e.contains("no answer"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreadable_success_is_retried_not_trusted() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::Text(201, "<html>gateway</html>")
        } else {
            captured("ch_1")
        }
    })
    .await;
    let (p, _) = provider(&server);
    assert!(p.authorize_capture(&charge()).await.is_ok());
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_refund_posts_to_the_charge_and_maps_404() {
    let server = Server::start(|_, r: &Seen| {
        if r.path.contains("ch_missing") {
            Reply::Json(404, json!({"code": "charge_not_found"}))
        } else {
            Reply::Json(201, json!({"refundId": "re_1", "status": "REFUNDED"}))
        }
    })
    .await;
    let (p, _) = provider(&server);
    let eur = Money::new(1200, "EUR");
    assert_eq!(
        p.refund("ch_1", &eur, "o-1:refund").await.unwrap(),
        RefundOutcome::Refunded {
            refund_id: "re_1".into()
        }
    );
    assert_eq!(
        p.refund("ch_missing", &eur, "o-2:refund").await.unwrap(),
        RefundOutcome::UnknownCharge
    );
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/charges/ch_1/refunds");
    assert_eq!(seen[0].headers["idempotency-key"], "o-1:refund");
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(seen[0].body, json!({"amount": 1200}));
    // An id is one path segment, whatever it holds.
    p.refund("ch/../x y", &eur, "o-3:refund").await.unwrap();
    assert_eq!(server.seen()[2].path, "/v1/charges/ch%2F..%2Fx%20y/refunds");
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it() {
    let server = Server::start(|_, _| captured("ch_1")).await;
    let (p, _) = provider_with(config(&format!("{}/psp/", server.url)));
    p.authorize_capture(&charge()).await.unwrap();
    assert_eq!(server.seen()[0].path, "/psp/v1/charges");
    assert!(HttpPaymentProvider::new(PspConfig::new("not a url"), ApiKey::Missing).is_err());
    assert!(HttpPaymentProvider::new(PspConfig::new("ftp://psp"), ApiKey::Missing).is_err());
}

#[tokio::test]
async fn without_an_api_key_nothing_is_sent() {
    let server = Server::start(|_, _| captured("ch_1")).await;
    let clock = Arc::new(ManualClock::new());
    let p =
        HttpPaymentProvider::with_clock(config(&server.url), ApiKey::Missing, clock.clone(), clock)
            .unwrap();
    assert!(matches!(
        p.authorize_capture(&charge()).await,
        Err(ProviderError::Config(_))
    ));
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn the_breaker_opens_on_an_outage_fails_fast_and_a_trial_closes_it() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = down.clone();
    let server = Server::start(move |_, _| {
        if flag.load(Ordering::SeqCst) {
            Reply::Json(503, json!({}))
        } else {
            captured("ch_1")
        }
    })
    .await;
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let sink = transitions.clone();
    let (p, clock) = provider(&server);
    let p = p.on_transition(move |t| sink.lock().unwrap().push((t.from, t.to)));
    // Each call makes up to 4 attempts; ≥ 10 failing in 10 s open the breaker.
    let mut open = false;
    for _ in 0..5 {
        match p.authorize_capture(&charge()).await {
            Err(ProviderError::CircuitOpen { retry_after }) => {
                assert!(retry_after <= Duration::from_secs(30));
                open = true;
                break;
            }
            Err(ProviderError::Unavailable(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(open, "the breaker opened");
    assert_eq!(p.breaker().state(), BreakerState::Open);
    // Open: the provider is not called at all.
    let calls = server.count();
    assert!(matches!(
        p.authorize_capture(&charge()).await,
        Err(ProviderError::CircuitOpen { .. })
    ));
    assert_eq!(server.count(), calls);
    // 30 s later, with the provider back, the trial call goes through and closes it.
    down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(30));
    assert!(p.authorize_capture(&charge()).await.is_ok());
    assert_eq!(p.breaker().state(), BreakerState::Closed);
    assert_eq!(
        *transitions.lock().unwrap(),
        vec![
            (BreakerState::Closed, BreakerState::Open),
            (BreakerState::Open, BreakerState::HalfOpen),
            (BreakerState::HalfOpen, BreakerState::Closed),
        ]
    );
}

#[tokio::test]
async fn retries_stop_at_the_budget_when_the_deadline_is_unknown() {
    let server = Server::start(|_, _| Reply::Json(503, json!({}))).await;
    // 1.5 s: the first retry (0.5 s wait + a 300 ms attempt) fits, the second does not.
    let (p, clock) = provider_with(PspConfig {
        default_budget: Duration::from_millis(1_500),
        ..config(&server.url)
    });
    assert!(p.authorize_capture(&charge()).await.is_err());
    assert_eq!(server.count(), 2, "one retry fits in 1.5 s");
    assert_eq!(clock.slept().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_invocations_deadline_less_the_margin() {
    let server = Server::start(|_, _| Reply::Json(503, json!({}))).await;
    let (p, clock) = provider(&server);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // 2.6 s left, 2 s kept for after the call: time for one attempt and no retry.
    let result =
        dishpatch::runtime::deadline::with_deadline(now_ms + 2_600, p.authorize_capture(&charge()))
            .await;
    assert!(matches!(result, Err(ProviderError::Unavailable(_))));
    assert_eq!(server.count(), 1);
    assert!(clock.slept().is_empty());
    // Already out of time: the provider is not called, and the breaker counts nothing.
    let result =
        dishpatch::runtime::deadline::with_deadline(now_ms + 1_000, p.authorize_capture(&charge()))
            .await;
    match result {
        Err(ProviderError::Unavailable(e)) => assert!(e.contains("no time left"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count(), 1);
    assert_eq!(p.breaker().snapshot().calls_in_window, 1);
}

/// Every attempt is a request counted by its result, every later attempt a retry by
/// its number; a call the open breaker refuses is a REJECTED request.
#[tokio::test]
async fn attempts_are_counted_by_result_and_retries_by_number() {
    use dishpatch::emf::metrics::{PROVIDER_REQUESTS, PROVIDER_RETRIES};
    use dishpatch::emf::{assert_valid, Capture};

    let server = Server::start(|n, _| match n {
        0 => Reply::Json(503, json!({})),
        1 => Reply::Hang,
        _ => captured("ch_1"),
    })
    .await;
    let (p, _) = provider(&server);
    let capture = Capture::start();
    assert!(p.authorize_capture(&charge()).await.is_ok());
    let dims = |metric| {
        capture
            .points(metric)
            .into_iter()
            .map(|(mut dims, n, line)| {
                assert_valid(&line);
                assert_eq!(line["idempotencyKey"], "o-1:capture");
                assert_eq!(n, 1.0);
                dims.remove(0)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(dims(&PROVIDER_REQUESTS), ["FAILURE", "TIMEOUT", "SUCCESS"]);
    assert_eq!(dims(&PROVIDER_RETRIES), ["1", "2"]);

    let down = Server::start(|_, _| Reply::Json(503, json!({}))).await;
    let (p, _) = provider(&down);
    while !matches!(
        p.authorize_capture(&charge()).await,
        Err(ProviderError::CircuitOpen { .. })
    ) {}
    let results = dims(&PROVIDER_REQUESTS);
    assert_eq!(results.last().map(String::as_str), Some("REJECTED"));
    assert!(results.iter().filter(|r| *r == "REJECTED").count() == 1);
}

#[test]
fn the_breaker_open_period_comes_from_the_environment_within_bounds() {
    let open_for = |value: Option<&str>| {
        let vars = value.map(|v| ("PSP_BREAKER_OPEN_SECONDS".to_owned(), v.to_owned()));
        let env = Env::from_map(vars.into_iter().collect());
        PspConfig::from_env("http://psp.test", &env)
            .breaker
            .open_for
    };
    assert_eq!(open_for(None), Duration::from_secs(30), "the default");
    assert_eq!(open_for(Some(" 5 ")), Duration::from_secs(5));
    assert_eq!(
        open_for(Some("0")),
        Duration::from_secs(1),
        "at least a second"
    );
    assert_eq!(
        open_for(Some("86400")),
        Duration::from_secs(300),
        "at most 300 s"
    );
    for unreadable in ["", "soon", "-5", "2.5"] {
        assert_eq!(
            open_for(Some(unreadable)),
            Duration::from_secs(30),
            "{unreadable:?}"
        );
    }
    // Nothing else of the configuration moves.
    let env = Env::from_map([("PSP_BREAKER_OPEN_SECONDS".to_owned(), "5".to_owned())].into());
    assert_eq!(
        PspConfig {
            breaker: BreakerConfig::default(),
            ..PspConfig::from_env("http://psp.test", &env)
        },
        PspConfig::new("http://psp.test")
    );
}
