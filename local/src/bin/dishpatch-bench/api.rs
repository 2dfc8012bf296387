//! A small client for the local gateway: plain HTTP on loopback, dev tokens.

use dishpatch_local::tokens;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// A small HTTP client for the gateway (plain HTTP on loopback).
pub struct Api {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            http: Client::builder(TokioExecutor::new()).build_http(),
            base,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        (sub, role): (&str, &str),
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let token = tokens::mint(sub, &[role]).map_err(|e| e.to_string())?;
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Places a one-item wallet order as `customer`; its id.
    pub async fn place(&self, customer: &str, item: &str) -> Result<String, String> {
        let body = json!({
            "restaurantId": "r-1",
            "items": [{"menuItemId": item, "quantity": 1}],
            "deliveryAddress": {"line1": "1 Rua Augusta", "city": "Lisbon", "postcode": "1100-048", "country": "PT"},
            "paymentMethod": "WALLET"
        });
        let (status, body) = self
            .call("POST", "/v1/orders", (customer, "CUSTOMER"), Some(body))
            .await?;
        if status != 201 {
            return Err(format!("order not accepted: {status} {body}"));
        }
        body["orderId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no orderId in {body}"))
    }

    pub async fn complete(&self, id: &str, courier: &str) -> Result<(), String> {
        let (status, body) = self
            .call(
                "POST",
                &format!("/v1/deliveries/{id}/complete"),
                (courier, "COURIER"),
                None,
            )
            .await?;
        if status != 200 {
            return Err(format!("completing {id} failed: {status} {body}"));
        }
        Ok(())
    }
}
