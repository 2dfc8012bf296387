//! The HTTPS client verifies the server it talks to: a local server whose certificate a
//! private CA issued (`tests/tls/`: a CA and a `localhost` certificate, valid until
//! 2126, the CA's key discarded) is refused with the compiled-in roots and reached once
//! `SSL_CERT_FILE` names that CA. One test in its own binary: it sets the variable
//! before anything reads it.

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_types::error::display::DisplayErrorContext;
use dishpatch_sdk::tls::{https_client, Roots};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls/ca.pem");
const LEAF: &[u8] = include_bytes!("tls/localhost.pem");
const KEY: &[u8] = include_bytes!("tls/localhost.key");

/// What the server saw of one connection: the request line, or why the handshake failed.
type Seen = Result<String, String>;

/// An HTTPS server on loopback answering every request as STS's GetCallerIdentity.
async fn server() -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let certs = CertificateDer::pem_slice_iter(LEAF)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => return drop(tx.send(Err(e.to_string()))),
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The SDK's query request is small: headers and body in a few reads.
                while !complete(&request) {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let _ = tx.send(Ok(text.lines().next().unwrap_or_default().to_owned()));
                let body = concat!(
                    r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">"#,
                    "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/tls-test</Arn>",
                    "<UserId>AIDATLSTEST</UserId><Account>123456789012</Account></GetCallerIdentityResult>",
                    "<ResponseMetadata><RequestId>tls-test</RequestId></ResponseMetadata>",
                    "</GetCallerIdentityResponse>"
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, rx)
}

/// The headers have ended and the body is as long as `content-length` says.
fn complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

/// GetCallerIdentity at `https://localhost:{port}` through the functions' HTTPS client.
async fn caller_account(roots: Roots, port: u16) -> Result<String, String> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(roots))
        .endpoint_url(format!("https://localhost:{port}"))
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            "AKIDTLSTEST",
            "secret",
            None,
            None,
            "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .map(|out| out.account().unwrap_or_default().to_owned())
        .map_err(|e| DisplayErrorContext(&e).to_string())
}

#[test]
fn a_private_ca_is_refused_with_the_bundled_roots_and_trusted_through_ssl_cert_file() {
    // Before any thread or root store exists.
    std::env::remove_var("SSL_CERT_DIR");
    std::env::set_var("SSL_CERT_FILE", CA);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (port, mut seen) = server().await;

        let refused = caller_account(Roots::Bundled, port).await;
        let error = refused.expect_err("the bundled roots must not trust a private CA");
        assert!(
            error.contains("invalid peer certificate") && error.contains("UnknownIssuer"),
            "{error}"
        );
        let handshake = seen.recv().await.unwrap();
        assert!(
            handshake.is_err(),
            "no request may get through: {handshake:?}"
        );

        let roots = Roots::from_env(|name| std::env::var(name).ok());
        assert_eq!(roots, Roots::System);
        let account = caller_account(roots, port).await;
        assert_eq!(account.as_deref(), Ok("123456789012"));
        let request = seen.recv().await.unwrap().unwrap();
        assert_eq!(request, "POST / HTTP/1.1");
    });
}
