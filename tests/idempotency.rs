//! `Idempotency-Key` on `POST /v1/orders` on the local stack, over real HTTP: concurrent
//! duplicates place one order, a later duplicate replays the first answer, and the key
//! with another body is refused.

use dishpatch_e2e::{order_body, System};
use dishpatch_local::tokens;
use serde_json::{json, Value};

struct Answer {
    status: u16,
    location: Option<String>,
    retry_after: Option<String>,
    replayed: bool,
    body: Value,
}

async fn post(
    client: reqwest::Client,
    url: String,
    token: String,
    key: String,
    body: Value,
) -> Answer {
    let resp = client
        .post(url)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("gateway answers");
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let location = header("location");
    let retry_after = header("retry-after");
    let replayed = header("idempotent-replayed").as_deref() == Some("true");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Answer {
        status,
        location,
        retry_after,
        replayed,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

#[tokio::test]
async fn one_key_places_one_order_under_concurrent_and_later_duplicates() {
    let sys = System::start("idem").await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/orders", sys.stack.url());
    let token = tokens::mint("alice", &["CUSTOMER"]).unwrap();
    let key = "2b7e1d9a-e2e-idempotency".to_owned();
    let body = order_body(
        json!([{"menuItemId": "m-1", "quantity": 1}, {"menuItemId": "m-3", "quantity": 2}]),
    );

    // 20 identical requests at once.
    let calls: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(post(
                client.clone(),
                url.clone(),
                token.clone(),
                key.clone(),
                body.clone(),
            ))
        })
        .collect();
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert!(
        !created.is_empty(),
        "the request that claimed the key places the order"
    );
    let first = created
        .iter()
        .find(|a| !a.replayed)
        .expect("one answer is the original");
    let order_id = first.body["orderId"].as_str().unwrap().to_owned();
    for a in &answers {
        match a.status {
            201 => {
                assert_eq!(a.body, first.body, "every 201 is the same order");
                assert_eq!(
                    a.location.as_deref(),
                    Some(format!("/v1/orders/{order_id}").as_str())
                );
            }
            409 => {
                assert_eq!(a.body["code"], "REQUEST_IN_PROGRESS", "{}", a.body);
                assert_eq!(a.retry_after.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.status == 201 && !a.replayed)
            .count(),
        1,
        "the handler ran once"
    );

    eprintln!(
        "20 concurrent duplicates: {} placed, {} replayed, {} in progress",
        answers
            .iter()
            .filter(|a| a.status == 201 && !a.replayed)
            .count(),
        answers.iter().filter(|a| a.replayed).count(),
        answers.iter().filter(|a| a.status == 409).count(),
    );
    let listed = sys.as_customer("alice", "GET", "/v1/orders", None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![order_id.as_str()], "exactly one order");

    // After completion, the same request replays the first answer.
    let replay = post(
        client.clone(),
        url.clone(),
        token.clone(),
        key.clone(),
        body.clone(),
    )
    .await;
    assert_eq!(replay.status, 201, "{}", replay.body);
    assert!(replay.replayed);
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.location, first.location);

    // The key with another body is refused.
    let mut other = body.clone();
    other["items"][0]["quantity"] = json!(2);
    let reused = post(
        client.clone(),
        url.clone(),
        token.clone(),
        key.clone(),
        other,
    )
    .await;
    assert_eq!(
        (reused.status, reused.body["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED")),
        "{}",
        reused.body
    );

    // Another key is another order; so is the same key for another customer.
    let fresh = post(
        client.clone(),
        url.clone(),
        token,
        "another-key".into(),
        body.clone(),
    )
    .await;
    assert_eq!(fresh.status, 201);
    assert_ne!(fresh.body["orderId"], first.body["orderId"]);
    let bob = tokens::mint("bob", &["CUSTOMER"]).unwrap();
    let bobs = post(client, url, bob, key, body).await;
    assert_eq!(bobs.status, 201);
    assert!(!bobs.replayed);
    assert_ne!(bobs.body["orderId"], first.body["orderId"]);
    let listed = sys.as_customer("alice", "GET", "/v1/orders", None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
}
