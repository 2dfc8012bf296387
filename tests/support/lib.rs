//! A client for the local stack's HTTP API, as a customer, manager or courier would use it.
//!
//! The end-to-end tests (`tests/*.rs`) run the whole system through it on the local
//! stack (`dishpatch-local`) over real HTTP, and read tables, queues and the operator
//! CLI's library (`dishpatch-ops`) to check what happened. Test-only: nothing depends on
//! this crate.

use dishpatch_local::testing::{moto, unique_prefix};
use dishpatch_local::{tokens, LocalStack, LocalStackOptions};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a saga may take on the local stack before a test gives up.
pub const SAGA_DEADLINE: Duration = Duration::from_secs(45);

pub struct System {
    pub stack: LocalStack,
    http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Value,
}

impl System {
    pub async fn start(name: &str) -> System {
        System::start_with(LocalStackOptions::new(unique_prefix(name))).await
    }

    pub async fn start_with(opts: LocalStackOptions) -> System {
        System::start_exactly(opts.retry_delay(Duration::from_millis(500))).await
    }

    /// As given: the caller chooses the retry delay of failed messages.
    pub async fn start_exactly(opts: LocalStackOptions) -> System {
        let stack = LocalStack::start(opts.endpoint(moto()))
            .await
            .expect("local stack starts");
        System {
            stack,
            http: reqwest::Client::new(),
        }
    }

    /// The invariant checker's report on the stack at rest (waiting up to
    /// [`SAGA_DEADLINE`] for it to settle).
    pub async fn report_at_rest(&self) -> dishpatch_local::invariants::Report {
        self.stack
            .checker()
            .check_at_quiescence(
                &dishpatch_local::invariants::CheckOptions::quiescent(),
                SAGA_DEADLINE,
            )
            .await
            .expect("the checker reads the stack")
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        who: Option<(&str, &[&str])>,
        body: Option<Value>,
    ) -> Reply {
        let url = format!("{}{path}", self.stack.url());
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some((sub, roles)) = who {
            req = req.bearer_auth(tokens::mint(sub, roles).unwrap());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            content_type,
            location,
            body,
        }
    }

    /// A request as `customer` (role CUSTOMER).
    pub async fn as_customer(
        &self,
        customer: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.call(method, path, Some((customer, &["CUSTOMER"])), body)
            .await
    }

    /// Places an order as `customer`, asserting it was accepted; returns the order id.
    pub async fn place(&self, customer: &str, items: Value) -> String {
        self.place_body(customer, order_body(items)).await
    }

    /// Places the order `body` as `customer`, asserting it was accepted; its id.
    pub async fn place_body(&self, customer: &str, body: Value) -> String {
        let r = self
            .as_customer(customer, "POST", "/v1/orders", Some(body))
            .await;
        assert_eq!(r.status, 201, "order not accepted: {}", r.body);
        r.body["orderId"].as_str().unwrap().to_owned()
    }

    /// `customer` asks to cancel order `id`.
    pub async fn cancel(&self, customer: &str, id: &str) -> Reply {
        self.as_customer(customer, "DELETE", &format!("/v1/orders/{id}"), None)
            .await
    }

    /// `courier` reports order `id` delivered.
    pub async fn complete(&self, courier: &str, id: &str) -> Reply {
        let path = format!("/v1/deliveries/{id}/complete");
        self.call("POST", &path, Some((courier, &["COURIER"])), None)
            .await
    }

    /// `customer` tops their wallet up by `amount` euro cents, paid with card `token`.
    pub async fn top_up(&self, customer: &str, amount: i64, token: &str) -> Reply {
        let body = json!({"amount": {"amount": amount, "currency": "EUR"}, "cardToken": token});
        self.as_customer(customer, "POST", "/v1/wallet/top-ups", Some(body))
            .await
    }

    /// What a saga may take and give back: `customer`'s wallet balance and the stock of
    /// `item`, now.
    pub async fn holdings(&self, customer: &str, item: &str) -> Holdings {
        Holdings {
            wallet: self.wallet(customer).await,
            stock: self.available(item).await,
        }
    }

    /// A customer's GET of `path`, which must answer 200: its body.
    async fn get_ok(&self, customer: &str, path: &str) -> Value {
        let r = self
            .call("GET", path, Some((customer, &["CUSTOMER"])), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    pub async fn order(&self, customer: &str, id: &str) -> Value {
        self.get_ok(customer, &format!("/v1/orders/{id}")).await
    }

    /// The order's timeline entries of `kind` (`STATUS` or `NOTIFICATION`), each as the
    /// string in `field`.
    pub async fn timeline(&self, customer: &str, id: &str, kind: &str, field: &str) -> Vec<String> {
        self.get_ok(customer, &format!("/v1/orders/{id}/timeline"))
            .await["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["kind"] == kind)
            .map(|e| e[field].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Polls the order until its status is `status`; fails with the last state seen.
    pub async fn wait_for(&self, customer: &str, id: &str, status: &str) -> Value {
        self.wait_for_within(customer, id, status, SAGA_DEADLINE)
            .await
    }

    pub async fn wait_for_within(
        &self,
        customer: &str,
        id: &str,
        status: &str,
        within: Duration,
    ) -> Value {
        let deadline = std::time::Instant::now() + within;
        let mut pause = Duration::from_millis(25);
        loop {
            let o = self.order(customer, id).await;
            if o["status"] == status {
                return o;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "order {id} never reached {status}; last seen: {o}"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    pub async fn wallet(&self, customer: &str) -> i64 {
        let r = self
            .call("GET", "/v1/wallet", Some((customer, &["CUSTOMER"])), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["balance"]["amount"].as_i64().unwrap()
    }

    /// `menuItemId -> available` for restaurant r-1.
    pub async fn available(&self, item: &str) -> i64 {
        let r = self
            .call("GET", "/v1/restaurants/r-1/menu", None, None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["menuItemId"] == item)
            .and_then(|i| i["available"].as_i64())
            .unwrap_or_else(|| panic!("no item {item} in {}", r.body))
    }

    pub async fn set_stock(&self, item: &str, name: &str, price: i64, stock: i64) -> Reply {
        self.call(
            "PUT",
            &format!("/v1/restaurants/r-1/menu/items/{item}"),
            Some(("manager-1", &["MANAGER"])),
            Some(json!({"name": name, "price": {"amount": price, "currency": "EUR"}, "stock": stock})),
        )
        .await
    }
}

/// A customer's wallet balance and an item's available stock ([`System::holdings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdings {
    pub wallet: i64,
    pub stock: i64,
}

/// [`order_body`] paid by card `token`.
pub fn card_order_body(items: Value, token: &str) -> Value {
    let mut body = order_body(items);
    body["paymentMethod"] = json!("CARD");
    body["cardToken"] = json!(token);
    body
}

pub fn order_body(items: Value) -> Value {
    json!({
        "restaurantId": "r-1",
        "items": items,
        "deliveryAddress": {"line1": "1 Rua Augusta", "city": "Lisbon", "postcode": "1100-048", "country": "PT"},
        "paymentMethod": "WALLET"
    })
}
