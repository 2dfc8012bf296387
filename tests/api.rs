//! The HTTP API's conventions on the local stack: auth, ownership, problems, roles.

use dishpatch_e2e::{order_body, System};
use serde_json::json;

#[tokio::test]
async fn api_conventions_hold_over_real_http() {
    let sys = System::start("api").await;

    // Health and the menu are public; orders need a token.
    assert_eq!(sys.call("GET", "/v1/health", None, None).await.status, 200);
    assert_eq!(
        sys.call("GET", "/v1/restaurants/r-1/menu", None, None)
            .await
            .status,
        200
    );
    let r = sys
        .call(
            "POST",
            "/v1/orders",
            None,
            Some(order_body(json!([{"menuItemId": "m-1", "quantity": 1}]))),
        )
        .await;
    assert_eq!(r.status, 401);

    // Bad bodies are 400 problem+json naming the field; unknown items 422.
    let mut bad = order_body(json!([{"menuItemId": "m-1", "quantity": 0}]));
    let r = sys
        .as_customer("alice", "POST", "/v1/orders", Some(bad.clone()))
        .await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (400, "application/problem+json")
    );
    assert_eq!(r.body["code"], "VALIDATION_FAILED");
    assert_eq!(r.body["field"], "items[0].quantity");
    assert!(r.body["requestId"].is_string());
    bad["items"][0]["quantity"] = json!(1);
    bad["deliveryAddress"] = json!(null);
    let r = sys
        .as_customer("alice", "POST", "/v1/orders", Some(bad))
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("deliveryAddress"))
    );
    let r = sys
        .as_customer(
            "alice",
            "POST",
            "/v1/orders",
            Some(order_body(json!([{"menuItemId": "nope", "quantity": 1}]))),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (422, Some("UNKNOWN_MENU_ITEM"))
    );

    // 201 with Location; a client-sent price is ignored.
    let mut body = order_body(json!([{"menuItemId": "m-2", "quantity": 1}]));
    body["total"] = json!({"amount": 1, "currency": "EUR"});
    let r = sys
        .as_customer("alice", "POST", "/v1/orders", Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(
        r.location.as_deref(),
        Some(format!("/v1/orders/{id}").as_str())
    );
    assert_eq!(r.body["total"], json!({"amount": 650, "currency": "EUR"}));

    // Another customer's order does not exist for them.
    let r = sys
        .as_customer("bob", "GET", &format!("/v1/orders/{id}"), None)
        .await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (404, "application/problem+json")
    );
    let r = sys.as_customer("bob", "GET", "/v1/orders", None).await;
    assert_eq!(r.body["items"], json!([]));
    let r = sys
        .as_customer("alice", "GET", "/v1/orders?page_size=1", None)
        .await;
    assert_eq!(r.body["items"][0]["orderId"], id.as_str());

    // Menu edits need MANAGER (or ADMIN).
    let edit = json!({"name": "Bifana", "price": {"amount": 700, "currency": "EUR"}, "stock": 10});
    let path = "/v1/restaurants/r-1/menu/items/m-2";
    assert_eq!(
        sys.call("PUT", path, None, Some(edit.clone())).await.status,
        401
    );
    let r = sys
        .as_customer("alice", "PUT", path, Some(edit.clone()))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let r = sys
        .call("PUT", path, Some(("manager-1", &["MANAGER"])), Some(edit))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let menu = sys
        .call("GET", "/v1/restaurants/r-1/menu", None, None)
        .await;
    let m2 = menu.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["menuItemId"] == "m-2")
        .unwrap()
        .clone();
    assert_eq!(m2["price"], json!({"amount": 700, "currency": "EUR"}));

    // Wallet top-ups are paid: an unpaid one (and one past the bound) is refused and
    // writes nothing; a card charge credits, once, with a ledger entry.
    let before = sys.wallet("carol").await;
    for body in [
        json!({"amount": {"amount": 1_000_000, "currency": "EUR"}}),
        json!({"amount": {"amount": 1_000_000, "currency": "EUR"}, "cardToken": "tok_visa"}),
    ] {
        let r = sys
            .as_customer("carol", "POST", "/v1/wallet/top-ups", Some(body))
            .await;
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (400, "application/problem+json"),
            "{}",
            r.body
        );
    }
    assert_eq!(sys.wallet("carol").await, before);
    let r = sys.top_up("carol", 2500, "tok_visa").await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (201, json!("CREDITED")),
        "{}",
        r.body
    );
    assert_eq!(sys.wallet("carol").await, before + 2500);
    let r = sys.top_up("carol", 2500, "tok_decline_funds").await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (402, json!("CARD_DECLINED")),
        "{}",
        r.body
    );
    let r = sys
        .as_customer("carol", "GET", "/v1/wallet/transactions?page_size=1", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["items"][0]["kind"], "TOP_UP");
    assert_eq!(
        r.body["items"][0]["amount"],
        json!({"amount": 2500, "currency": "EUR"})
    );
    // Every wallet's balance is its ledger, and the top-up matches the sandbox's charge.
    let charges = sys
        .stack
        .provider_charges()
        .expect("the stack runs the sandbox");
    let report = sys
        .stack
        .checker()
        .check(&dishpatch_local::invariants::CheckOptions::default().provider_charges(charges))
        .await
        .unwrap();
    for money in [
        dishpatch_local::invariants::Invariant::WalletMatchesLedger,
        dishpatch_local::invariants::Invariant::MoneyEntersOnlyByChargeOrReason,
        dishpatch_local::invariants::Invariant::LedgerMatchesPayments,
    ] {
        assert!(report.of(money).is_empty(), "{report}");
    }

    // Unknown routes answer like API Gateway.
    assert_eq!(sys.call("GET", "/v1/nowhere", None, None).await.status, 404);
}
