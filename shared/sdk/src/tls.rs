//! The HTTPS client the AWS SDK clients share.
//!
//! By default it trusts the Mozilla root certificates compiled into the binary rather
//! than the system store: reading and parsing the system's bundle takes about 10 ms
//! here, and a Lambda function only talks to AWS endpoints, whose roots the set
//! includes. Setting `SSL_CERT_FILE` or `SSL_CERT_DIR` (a private CA, a TLS-inspecting
//! proxy) switches to the system store, which honours both.
//!
//! Either way the root store is built when the SDK first asks for a connection, not
//! when the clients are built, so a cold start's init does no certificate work at all
//! (the SDK's own client would build a throw-away connector, roots included, for every
//! service client it is handed to). The first AWS call builds it once per process: the
//! bundled roots go to the SDK as one PEM document, the only form its trust store
//! takes, which costs well under a millisecond.

use std::borrow::Cow;
use std::sync::OnceLock;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

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

/// An HTTPS client (rustls with aws-lc, as the SDK's default) trusting `roots`, built
/// on the SDK's first request rather than here or when a service client is built.
pub fn https_client(roots: Roots) -> SharedHttpClient {
    SharedHttpClient::new(Deferred {
        roots,
        client: OnceLock::new(),
    })
}

/// The SDK's hyper client with `roots`, built now (its connector, and with it the root
/// store, is built when it is first asked for one).
fn build(roots: Roots) -> SharedHttpClient {
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

/// Builds the client on the first request. It does not pass on the SDK's validation of
/// a freshly built service client: the hyper client answers that by building a
/// connector it then drops, so it would load the roots once per service client at init.
#[derive(Debug)]
struct Deferred {
    roots: Roots,
    client: OnceLock<SharedHttpClient>,
}

impl Deferred {
    fn client(&self) -> &SharedHttpClient {
        self.client.get_or_init(|| build(self.roots))
    }
}

impl HttpClient for Deferred {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.client().http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        // What the SDK's hyper client reports, without building it.
        Some(ConnectorMetadata::new("hyper", Some(Cow::Borrowed("1.x"))))
    }
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
    fn the_bundled_roots_include_those_aws_endpoints_chain_to() {
        let holds = |name: &str| {
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .any(|c| c.as_ref().windows(name.len()).any(|w| w == name.as_bytes()))
        };
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(holds(name), "{name}");
        }
    }

    #[test]
    fn nothing_is_built_until_the_first_request() {
        use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
        use aws_smithy_types::config_bag::ConfigBag;
        let client = Deferred {
            roots: Roots::Bundled,
            client: OnceLock::new(),
        };
        // What building a service client asks of its HTTP client.
        client
            .validate_base_client_config(&RuntimeComponentsBuilder::new("test"), &ConfigBag::base())
            .unwrap();
        assert!(client.connector_metadata().is_some());
        assert!(client.client.get().is_none());
        client.client();
        assert!(client.client.get().is_some());
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
