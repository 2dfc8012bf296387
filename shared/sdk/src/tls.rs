//! The HTTPS client the AWS SDK clients share.
//!
//! By default it trusts the Mozilla root certificates compiled into the binary rather
//! than the system store: reading a certificate directory at start-up is the largest
//! part of a cold start here, and a Lambda function only talks to AWS endpoints, whose
//! roots the set includes. Setting `SSL_CERT_FILE` or `SSL_CERT_DIR` (a private CA, a
//! TLS-inspecting proxy) switches to the system store, which honours both.

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_types::sdk_config::SharedHttpClient;

/// Which roots the client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The Mozilla set compiled into the binary.
    Bundled,
    /// The operating system's store (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured).
    System,
}

impl Roots {
    /// `System` when the environment names a certificate file or directory.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| get(name).is_some_and(|v| !v.is_empty());
        if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
            Roots::System
        } else {
            Roots::Bundled
        }
    }
}

/// The compiled-in roots as one PEM document (the form the SDK's trust store takes).
pub fn bundled_pem() -> Vec<u8> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2_000);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let b64 = engine.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// An HTTPS client (rustls with aws-lc, as the SDK's default) trusting `roots`.
pub fn https_client(roots: Roots) -> SharedHttpClient {
    let trust = match roots {
        Roots::System => TrustStore::default(),
        Roots::Bundled => TrustStore::empty().with_pem_certificate(bundled_pem()),
    };
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a trust store without extra server names always builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_only_when_the_environment_names_some() {
        let none = |_: &str| None;
        assert_eq!(Roots::from_env(none), Roots::Bundled);
        let empty = |_: &str| Some(String::new());
        assert_eq!(Roots::from_env(empty), Roots::Bundled);
        for name in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
            let one = |n: &str| (n == name).then(|| "/etc/ssl/certs".to_owned());
            assert_eq!(Roots::from_env(one), Roots::System, "{name}");
        }
    }

    #[test]
    fn the_bundled_pem_holds_every_root_and_decodes_back() {
        use base64::Engine;
        let pem = String::from_utf8(bundled_pem()).unwrap();
        let ders: Vec<Vec<u8>> = pem
            .split("-----END CERTIFICATE-----\n")
            .filter(|block| !block.is_empty())
            .map(|block| {
                let body = block.strip_prefix("-----BEGIN CERTIFICATE-----\n").unwrap();
                assert!(body.lines().all(|l| l.len() <= 64));
                base64::engine::general_purpose::STANDARD
                    .decode(body.replace('\n', ""))
                    .unwrap()
            })
            .collect();
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        assert!(roots.len() > 100, "{}", roots.len());
        assert_eq!(ders.len(), roots.len());
        assert!(ders
            .iter()
            .zip(roots)
            .all(|(d, r)| d.as_slice() == r.as_ref()));
    }
}
