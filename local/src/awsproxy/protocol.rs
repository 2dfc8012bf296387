//! What an AWS request is (service and action) and what an injected error looks like on
//! the wire, per protocol, so the SDK parses and classifies it as it would the real
//! service's.

use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;

/// `(service, action)` of a request: the service from the SigV4 credential scope
/// (`Credential=AKID/20250101/us-east-1/dynamodb/aws4_request`), the action from
/// `X-Amz-Target` (JSON protocols: DynamoDB, DynamoDB Streams, SQS, SSM) or the `Action`
/// form parameter (query protocol: SNS, SQS query).
pub fn classify(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let scope = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(['/', ',']).nth(3))
        .unwrap_or("unknown")
        .to_owned();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split_once('.'));
    if let Some((prefix, action)) = target {
        // DynamoDB Streams signs as `dynamodb`: tell them apart by the target's prefix.
        let service = if prefix.starts_with("DynamoDBStreams") {
            "dynamodbstreams".to_owned()
        } else {
            scope
        };
        return (service, action.to_owned());
    }
    let action = form_param(body, "Action").unwrap_or_else(|| "unknown".to_owned());
    (scope, action)
}

/// A parameter of an `application/x-www-form-urlencoded` body.
pub fn form_param(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The kinds of injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum FaultKind {
    /// A throttling error (400): the request was not applied.
    Throttle,
    /// A server error (500): the request was not applied.
    Error,
    /// The request was applied, then its answer lost: the caller sees a 500.
    LostResponse,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::Error => "error",
            FaultKind::LostResponse => "lost_response",
        }
    }
}

/// The error response `service` would send for `kind`. `alternate` picks between two
/// equivalent throttling errors where the service has two (DynamoDB).
pub fn fault_response(service: &str, kind: FaultKind, alternate: bool) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let server_error = kind != FaultKind::Throttle;
    let status = if server_error {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    let builder = Response::builder()
        .status(status)
        .header("x-amzn-RequestId", &request_id);
    match service {
        // awsQuery: an XML ErrorResponse.
        "sns" => {
            let (ty, code, message) = if server_error {
                ("Receiver", "InternalError", "Internal Error")
            } else {
                ("Sender", "Throttling", "Rate exceeded")
            };
            let body = format!(
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
                 <Type>{ty}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>{request_id}</RequestId></ErrorResponse>"
            );
            builder
                .header("content-type", "text/xml")
                .body(Full::new(Bytes::from(body)))
        }
        // AWS JSON 1.0 with query-compatible error codes in `x-amzn-query-error`, which
        // the SDK reads first.
        "sqs" => {
            let (ty, query) = if server_error {
                ("com.amazonaws.sqs#InternalError", "InternalError;Receiver")
            } else {
                (
                    "com.amazonaws.sqs#RequestThrottled",
                    "RequestThrottled;Sender",
                )
            };
            let body = serde_json::json!({"__type": ty, "message": "injected by the AWS proxy"});
            builder
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-query-error", query)
                .body(Full::new(Bytes::from(body.to_string())))
        }
        // AWS JSON (DynamoDB, Streams, SSM, ...).
        _ => {
            let ty = match (server_error, service, alternate) {
                (true, "dynamodb", _) => "com.amazonaws.dynamodb.v20120810#InternalServerError",
                (true, _, _) => "InternalServerError",
                (false, "dynamodb", false) => {
                    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
                }
                (false, _, _) => "com.amazon.coral.availability#ThrottlingException",
            };
            let body = serde_json::json!({"__type": ty, "message": "injected by the AWS proxy"});
            builder
                .header("content-type", "application/x-amz-json-1.0")
                .body(Full::new(Bytes::from(body.to_string())))
        }
    }
    .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str, target: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        if let Some(t) = target {
            h.insert("x-amz-target", t.parse().unwrap());
        }
        h
    }

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/{svc}/aws4_request, SignedHeaders=host, Signature=abc";

    #[test]
    fn services_and_actions_come_from_the_scope_target_and_form() {
        let h = headers(
            &AUTH.replace("{svc}", "dynamodb"),
            Some("DynamoDB_20120810.PutItem"),
        );
        assert_eq!(classify(&h, b"{}"), ("dynamodb".into(), "PutItem".into()));
        let h = headers(
            &AUTH.replace("{svc}", "dynamodb"),
            Some("DynamoDBStreams_20120810.GetRecords"),
        );
        assert_eq!(
            classify(&h, b"{}"),
            ("dynamodbstreams".into(), "GetRecords".into())
        );
        let h = headers(&AUTH.replace("{svc}", "sqs"), Some("AmazonSQS.SendMessage"));
        assert_eq!(classify(&h, b"{}"), ("sqs".into(), "SendMessage".into()));
        let h = headers(&AUTH.replace("{svc}", "sns"), None);
        assert_eq!(
            classify(&h, b"Action=Publish&Version=2010-03-31&Message=a%20b"),
            ("sns".into(), "Publish".into())
        );
        assert_eq!(
            form_param(b"Action=Publish&Message=a%20b+c%2", "Message").as_deref(),
            Some("a b c%2")
        );
    }
}
