//! One endpoint in front of several emulators: each request goes to the emulator of its
//! service, so every client of the local stack keeps a single `AWS_ENDPOINT_URL`.
//!
//! The service is read from the request itself: `X-Amz-Target` (DynamoDB and DynamoDB
//! Streams name theirs `DynamoDB_20120810.*` and `DynamoDBStreams_20120810.*`), else the
//! service of the SigV4 credential scope (`sqs`, `sns`, ...). A service with no route of
//! its own goes to the fallback. HTTP/1.1 only, one thread per client connection, each
//! with its own connection to each upstream it used: what an SDK's connection pool
//! sends, bodies framed by `Content-Length` or chunked.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// Where each service goes.
#[derive(Debug, Clone)]
pub struct Routes {
    /// `(service, upstream)`: a service as [`service_of`] names it.
    pub services: Vec<(&'static str, SocketAddr)>,
    /// Every other request.
    pub fallback: SocketAddr,
}

impl Routes {
    fn upstream(&self, service: &str) -> SocketAddr {
        self.services
            .iter()
            .find(|(s, _)| *s == service)
            .map_or(self.fallback, |(_, a)| *a)
    }
}

/// Serves `listener` in background threads for the rest of the process.
pub fn spawn(listener: TcpListener, routes: Routes) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || {
                let _ = relay(conn, &routes);
            });
        }
    });
}

/// The service a request is for: `dynamodb`, `dynamodbstreams`, `sqs`, `sns`, ... or
/// `""` when it names none (a health probe).
pub fn service_of(headers: &[(String, String)]) -> String {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let Some(target) = get("x-amz-target") {
        let prefix = target.split('.').next().unwrap_or_default();
        let service = prefix.split('_').next().unwrap_or_default();
        return match service {
            "DynamoDB" => "dynamodb".to_owned(),
            "DynamoDBStreams" => "dynamodbstreams".to_owned(),
            "AmazonSQS" => "sqs".to_owned(),
            other => other.to_ascii_lowercase(),
        };
    }
    // `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ...`
    get("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or_default()
        .to_owned()
}

struct Head {
    /// The start line and header lines as received, with their line ends.
    raw: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
    fn length(&self) -> Option<u64> {
        self.get("content-length")
            .and_then(|v| v.trim().parse().ok())
    }
    fn closes(&self) -> bool {
        self.get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads a start line and headers; `None` at a clean end of stream.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut headers = Vec::new();
    loop {
        let start = raw.len();
        if r.read_until(b'\n', &mut raw)? == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let line = String::from_utf8_lossy(&raw[start..]).trim_end().to_owned();
        if line.is_empty() {
            if start == 0 {
                raw.clear(); // a stray empty line between messages
                continue;
            }
            return Ok(Some(Head { raw, headers }));
        }
        if start > 0 {
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
}

/// Copies one message body from `r` to `w` as `head` frames it. `until_close`: a
/// response with neither length nor chunks runs to the end of the stream.
fn copy_body(
    head: &Head,
    r: &mut impl BufRead,
    w: &mut impl Write,
    until_close: bool,
) -> io::Result<()> {
    if head.chunked() {
        loop {
            let mut line = Vec::new();
            r.read_until(b'\n', &mut line)?;
            w.write_all(&line)?;
            let size = String::from_utf8_lossy(&line);
            let size = size.trim().split(';').next().unwrap_or_default();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut t = Vec::new();
                    if r.read_until(b'\n', &mut t)? == 0 {
                        return Ok(());
                    }
                    w.write_all(&t)?;
                    if t == b"\r\n" || t == b"\n" {
                        return Ok(());
                    }
                }
            }
            io::copy(&mut r.by_ref().take(size + 2), w)?;
        }
    } else if let Some(n) = head.length() {
        io::copy(&mut r.by_ref().take(n), w)?;
    } else if until_close {
        io::copy(r, w)?;
    }
    Ok(())
}

/// Whether a response to `method` with `status` has no body whatever its headers say.
fn bodiless(method: &str, status: u16) -> bool {
    method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 || status < 200
}

fn relay(client: TcpStream, routes: &Routes) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let mut upstreams: HashMap<SocketAddr, (BufReader<TcpStream>, TcpStream)> = HashMap::new();
    while let Some(req) = read_head(&mut from_client)? {
        let method = String::from_utf8_lossy(&req.raw)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        let to = routes.upstream(&service_of(&req.headers));
        let (from_up, to_up) = match upstreams.entry(to) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let s = TcpStream::connect(to)?;
                s.set_nodelay(true)?;
                e.insert((BufReader::new(s.try_clone()?), s))
            }
        };
        let mut out = io::BufWriter::new(&mut *to_up);
        out.write_all(&req.raw)?;
        copy_body(&req, &mut from_client, &mut out, false)?;
        out.flush()?;
        drop(out);

        let Some(resp) = read_head(from_up)? else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        let status: u16 = String::from_utf8_lossy(&resp.raw)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut back = io::BufWriter::new(&mut to_client);
        back.write_all(&resp.raw)?;
        let framed = resp.chunked() || resp.length().is_some();
        if !bodiless(&method, status) {
            copy_body(&resp, from_up, &mut back, !framed)?;
        }
        back.flush()?;
        drop(back);
        if req.closes() || resp.closes() || (!framed && !bodiless(&method, status)) {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_service_comes_from_the_target_else_the_credential_scope() {
        assert_eq!(
            service_of(&h(&[("X-Amz-Target", "DynamoDB_20120810.PutItem")])),
            "dynamodb"
        );
        assert_eq!(
            service_of(&h(&[(
                "x-amz-target",
                "DynamoDBStreams_20120810.GetRecords"
            )])),
            "dynamodbstreams"
        );
        assert_eq!(
            service_of(&h(&[("X-Amz-Target", "AmazonSQS.ReceiveMessage")])),
            "sqs"
        );
        let auth = "AWS4-HMAC-SHA256 Credential=test/20261206/us-east-1/sns/aws4_request, \
                    SignedHeaders=host, Signature=00";
        assert_eq!(service_of(&h(&[("Authorization", auth)])), "sns");
        assert_eq!(service_of(&h(&[("Host", "x")])), "");
    }

    /// A one-connection HTTP server answering every request with `name` and the body it
    /// got, chunked when asked.
    fn upstream(name: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let conn = conn.unwrap();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut w = conn;
                    while let Ok(Some(req)) = read_head(&mut r) {
                        let mut body = Vec::new();
                        copy_body(&req, &mut r, &mut body, false).unwrap();
                        let text = format!("{name}:{}", String::from_utf8_lossy(&body));
                        if req.get("x-chunked").is_some() {
                            write!(
                                w,
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{text}\r\n0\r\n\r\n",
                                text.len()
                            )
                            .unwrap();
                        } else {
                            write!(
                                w,
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                                text.len()
                            )
                            .unwrap();
                        }
                    }
                });
            }
        });
        addr
    }

    fn call(r: &mut BufReader<TcpStream>, w: &mut TcpStream, extra: &str, body: &str) -> String {
        write!(
            w,
            "POST / HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let head = read_head(r).unwrap().unwrap();
        let mut out = Vec::new();
        copy_body(&head, r, &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        if head.chunked() {
            // "<size>\r\n<text>\r\n0\r\n\r\n"
            text.split("\r\n").nth(1).unwrap().to_owned()
        } else {
            text
        }
    }

    #[test]
    fn requests_on_one_connection_reach_each_services_emulator() {
        let routes = Routes {
            services: vec![("dynamodb", upstream("ddb")), ("sqs", upstream("sqs"))],
            fallback: upstream("rest"),
        };
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        spawn(l, routes);
        let mut w = TcpStream::connect(addr).unwrap();
        let mut r = BufReader::new(w.try_clone().unwrap());
        let ddb = "X-Amz-Target: DynamoDB_20120810.GetItem\r\n";
        let sqs = "X-Amz-Target: AmazonSQS.SendMessage\r\nX-Chunked: 1\r\n";
        assert_eq!(call(&mut r, &mut w, ddb, "a"), "ddb:a");
        assert_eq!(call(&mut r, &mut w, sqs, "bb"), "sqs:bb");
        assert_eq!(call(&mut r, &mut w, "", ""), "rest:");
        assert_eq!(call(&mut r, &mut w, ddb, "c"), "ddb:c");
    }
}
