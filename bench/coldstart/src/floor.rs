//! The harness floor: a do-nothing "function" that connects to the Runtime API, asks
//! for an event and answers `{}` - no async runtime, no SDK, no logging. Its init is
//! what this harness measures for exec, dynamic linking and one connect, so the
//! functions' figures can be read against it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// The argument that turns `dishpatch-coldstart` into the floor client.
pub const ARG: &str = "__floor-client";

/// `content-length` and `lambda-runtime-aws-request-id` from a response head.
pub fn parse_head(head: &str) -> (usize, Option<String>) {
    let mut length = 0;
    let mut id = None;
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") {
            id = Some(value.to_owned());
        }
    }
    (length, id)
}

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(usize, Option<String>)> {
    let mut head = String::new();
    loop {
        let n = reader.read_line(&mut head)?;
        if n == 0 || head.ends_with("\r\n\r\n") {
            break;
        }
    }
    let (length, id) = parse_head(&head);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((length, id))
}

pub fn run() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let stream = TcpStream::connect(api)?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        writer.write_all(
            b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n",
        )?;
        let (_, id) = read_response(&mut reader)?;
        let id = id.ok_or_else(|| std::io::Error::other("no request id"))?;
        let post = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nhost: runtime\r\ncontent-length: 2\r\n\r\n{{}}"
        );
        writer.write_all(post.as_bytes())?;
        read_response(&mut reader)?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_length_and_request_id() {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nLambda-Runtime-Aws-Request-Id: r-7\r\ncontent-length: 42\r\n\r\n";
        assert_eq!(super::parse_head(head), (42, Some("r-7".to_owned())));
        assert_eq!(
            super::parse_head("HTTP/1.1 202 Accepted\r\n\r\n"),
            (0, None)
        );
    }
}
