//! Generated HTTP API requests for property tests of the handlers: any route of a
//! function with hostile path parameters, query strings, headers, claims and bodies
//! (random JSON, valid bodies with a field replaced or removed, raw text, oversized), and
//! the contract every answer must keep whatever came in: no panic, no 5xx, and every 4xx
//! an `application/problem+json` with a `code`.
//!
//! Cases per property: `DISHPATCH_FUZZ_CASES` (default 96); a long run is a documented
//! command (`bench/http_fuzz.sh`).

use crate::runtime::Function;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

/// One route of a function, with a valid body to mutate (routes without a body: `None`).
#[derive(Clone, Debug)]
pub struct Route {
    pub method: &'static str,
    /// The API Gateway route, e.g. `/v1/orders/{orderId}`.
    pub route: &'static str,
    pub body: Option<Value>,
}

impl Route {
    pub fn new(method: &'static str, route: &'static str, body: Option<Value>) -> Self {
        Route {
            method,
            route,
            body,
        }
    }

    fn params(&self) -> Vec<&'static str> {
        self.route
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }
}

/// Cases per property from `DISHPATCH_FUZZ_CASES`, default 96.
pub fn cases() -> u32 {
    std::env::var("DISHPATCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

/// Strings a client could send where an id is expected.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["o-1", "r-1", "r-2", "m-1", "alice", "bob", "courier-1", "manager-1"])
            .prop_map(str::to_owned),
        2 => "[A-Za-z0-9._-]{1,64}",
        1 => "[A-Za-z0-9._-]{65,200}",
        1 => "\\PC{0,40}",
        1 => Just(String::new()),
        1 => Just("../../etc/passwd".to_owned()),
    ]
}

/// Any JSON value, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            99,
            100,
            101,
            50_000,
            200_000,
            i64::MAX,
            i64::MIN
        ])
        .prop_map(|n| json!(n)),
        "\\PC{0,30}".prop_map(Value::String),
        prop::sample::select(vec![
            "EUR",
            "USD",
            "eur",
            "WALLET",
            "CARD",
            "tok_visa",
            "tok_decline_funds",
            "CUSTOMER",
            "ADMIN"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path to a value inside `v`, as JSON pointer segments.
fn paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let mut p = at.clone();
                p.push(k.clone());
                out.push(p.clone());
                paths(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                out.push(p.clone());
                paths(c, p, out);
            }
        }
        _ => {}
    }
}

/// `body` with the value at one of its paths replaced (`Some`) or removed (`None`).
fn mutate(body: &Value, which: usize, with: Option<Value>) -> Value {
    let mut all = vec![];
    paths(body, vec![], &mut all);
    let mut out = body.clone();
    let Some(path) = all.get(which % all.len().max(1)) else {
        return with.unwrap_or(Value::Null);
    };
    let (last, parent) = path.split_last().expect("paths are not empty");
    let mut node = &mut out;
    for seg in parent {
        node = match node {
            Value::Object(m) => m.get_mut(seg).expect("path exists"),
            Value::Array(a) => &mut a[seg.parse::<usize>().expect("index")],
            _ => return out,
        };
    }
    match (node, with) {
        (Value::Object(m), Some(v)) => {
            m.insert(last.clone(), v);
        }
        (Value::Object(m), None) => {
            m.remove(last);
        }
        (Value::Array(a), Some(v)) => a[last.parse::<usize>().expect("index")] = v,
        (Value::Array(a), None) => {
            a.remove(last.parse::<usize>().expect("index"));
        }
        _ => {}
    }
    out
}

/// A body for `route`: its valid body mutated, random JSON, raw text, or none.
fn body_for(route: &Route) -> BoxedStrategy<Option<String>> {
    let random = prop_oneof![
        3 => any_json().prop_map(|v| Some(v.to_string())),
        1 => "\\PC{0,200}".prop_map(Some),
        1 => Just(None),
        1 => (1usize..4).prop_map(|k| Some(format!("{{\"x\":\"{}\"}}", "y".repeat(k * 20_000)))),
    ];
    match &route.body {
        Some(valid) => {
            let valid = valid.clone();
            let v2 = valid.clone();
            prop_oneof![
                2 => Just(Some(valid.to_string())),
                5 => (any::<usize>(), prop::option::weighted(0.85, any_json()))
                    .prop_map(move |(i, with)| Some(mutate(&v2, i, with).to_string())),
                2 => random,
            ]
            .boxed()
        }
        None => random.boxed(),
    }
}

/// Claims as the JWT authorizer passes them, or none.
fn claims() -> impl Strategy<Value = Option<Value>> {
    let roles = prop_oneof![
        prop::sample::subsequence(vec!["CUSTOMER", "COURIER", "MANAGER", "ADMIN"], 0..=4)
            .prop_map(|r| format!("[{}]", r.join(" "))),
        "\\PC{0,30}",
        Just("[x,ADMIN CUSTOMER]".to_owned()),
    ];
    let sub = prop_oneof![
        prop::sample::select(vec!["alice", "bob", "courier-1", "manager-1", "root"])
            .prop_map(str::to_owned),
        "\\PC{0,80}",
    ];
    prop::option::weighted(
        0.85,
        (sub, roles, prop::option::of("[a-z0-9,-]{0,40}")).prop_map(|(sub, roles, restaurants)| {
            let mut c = json!({"sub": sub, "roles": roles});
            if let Some(r) = restaurants {
                c["restaurants"] = json!(r);
            }
            c
        }),
    )
}

/// The query string: known parameters with good and bad values, or junk.
fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let value = prop_oneof![
        "[0-9]{0,4}",
        Just("-1".to_owned()),
        Just("100000000000000000000".to_owned()),
        "[A-Za-z0-9_-]{0,60}",
        "\\PC{0,20}",
    ];
    let name = prop::sample::select(vec!["page_size", "page_token", "status", "x"])
        .prop_map(str::to_owned);
    prop::collection::vec((name, value), 0..3)
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let key = prop_oneof![
        "[ -~]{1,40}",
        "[ -~]{129,200}",
        Just(String::new()),
        "\\PC{1,10}",
    ];
    prop::collection::vec(
        prop_oneof![
            key.prop_map(|k| ("idempotency-key".to_owned(), k)),
            "[ -~]{0,30}".prop_map(|v| ("content-type".to_owned(), v)),
        ],
        0..3,
    )
}

/// A whole API Gateway (payload v2) event for one of `routes`.
pub fn event(routes: Vec<Route>) -> impl Strategy<Value = Value> {
    prop::sample::select(routes).prop_flat_map(|route| {
        let n = route.params().len();
        (
            Just(route.clone()),
            prop::collection::vec(id_like(), n),
            query(),
            headers(),
            claims(),
            body_for(&route),
        )
            .prop_map(|(route, values, query, headers, claims, body)| {
                build(&route, &values, &query, &headers, claims, body)
            })
    })
}

fn build(
    route: &Route,
    values: &[String],
    query: &[(String, String)],
    headers: &[(String, String)],
    claims: Option<Value>,
    body: Option<String>,
) -> Value {
    let names = route.params();
    // As API Gateway passes them: the raw path and query percent-encoded, the
    // parameters decoded.
    let mut path = route.route.to_owned();
    for (name, value) in names.iter().zip(values) {
        path = path.replace(&format!("{{{name}}}"), &encode(value));
    }
    let raw_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{} {}", route.method, route.route),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
            "http": {"method": route.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "fuzz"},
            "requestId": "req-fuzz", "routeKey": format!("{} {}", route.method, route.route), "stage": "$default",
            "time": "06/Dec/2026:10:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": false
    });
    for (k, v) in headers {
        event["headers"][k] = json!(v);
    }
    if !names.is_empty() {
        event["pathParameters"] = names
            .iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
    }
    if !query.is_empty() {
        event["queryStringParameters"] = query.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    }
    if let Some(b) = body {
        event["body"] = json!(b);
    }
    if let Some(c) = claims {
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": c, "scopes": null}});
    }
    event
}

/// Percent-encoding of everything but the unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What every answer must be: a response (not an invocation error), below 500, and a
/// problem with a code when it is a 4xx.
pub fn check_answer(
    event: &Value,
    answer: Result<Value, lambda_runtime::Error>,
) -> Result<(), TestCaseError> {
    let resp =
        answer.map_err(|e| TestCaseError::fail(format!("invocation failed: {e} for {event}")))?;
    let status = resp["statusCode"].as_u64().unwrap_or(0);
    prop_assert!(
        (200..500).contains(&status),
        "status {status} for {event}: {resp}"
    );
    if status >= 400 {
        let ct = resp["headers"]["content-type"].as_str().unwrap_or("");
        prop_assert_eq!(ct, "application/problem+json", "for {}", event);
        let body: Value = resp["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        prop_assert!(
            body["code"].as_str().is_some_and(|c| !c.is_empty()),
            "no code in {resp} for {event}"
        );
        prop_assert_eq!(body["status"].as_u64(), Some(status));
    }
    Ok(())
}

/// Runs `cases()` generated requests for `routes` through `f` (the runtime's whole HTTP
/// path), failing with the smallest request that breaks the contract.
pub fn run(f: &dyn Function, routes: Vec<Route>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime");
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<String, u64>::new());
    let result = runner.run(&event(routes), |event| {
        let answer = rt.block_on(crate::runtime::invoke(f, event.clone(), Default::default()));
        if let Ok(resp) = &answer {
            let code = serde_json::from_str::<Value>(resp["body"].as_str().unwrap_or(""))
                .ok()
                .and_then(|b| b["code"].as_str().map(str::to_owned));
            let key = format!("{} {}", resp["statusCode"], code.unwrap_or_default());
            *seen.borrow_mut().entry(key).or_default() += 1;
        }
        check_answer(&event, answer)
    });
    // What the run saw (statuses and problem codes), for the record of a long run.
    eprintln!("http_fuzz: {} cases: {:?}", cases(), seen.borrow());
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_replace_or_remove_one_value() {
        let body = json!({"a": {"b": 1}, "c": [1, 2]});
        assert_eq!(
            mutate(&body, 1, Some(json!("x"))),
            json!({"a": {"b": "x"}, "c": [1, 2]})
        );
        assert_eq!(mutate(&body, 0, None), json!({"c": [1, 2]}));
        assert_eq!(mutate(&body, 3, None), json!({"a": {"b": 1}, "c": [2]}));
    }

    #[test]
    fn events_name_their_route_and_fill_its_parameters() {
        let route = Route::new("GET", "/v1/orders/{orderId}", None);
        let e = build(
            &route,
            &["o-9".into()],
            &[("page_size".into(), "2".into())],
            &[],
            None,
            None,
        );
        assert_eq!(e["rawPath"], "/v1/orders/o-9");
        assert_eq!(e["pathParameters"]["orderId"], "o-9");
        assert_eq!(e["queryStringParameters"]["page_size"], "2");
        assert!(e["requestContext"].get("authorizer").is_none());
    }
}
