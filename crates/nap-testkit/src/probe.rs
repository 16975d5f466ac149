//! Plain-TCP probes of a local server: the `INFO` greeting and the HTTP
//! monitoring endpoints.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// Largest response read from a probe.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

fn connect(port: u16) -> Option<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    Some(stream)
}

/// The JSON of the `INFO {...}\r\n` line a client connection to
/// `127.0.0.1:port` is greeted with, once the server accepts clients; `None`
/// before that (or when the greeting is not a complete `INFO` line).
pub(crate) fn read_info(port: u16) -> Option<serde_json::Value> {
    let mut stream = connect(port)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > MAX_RESPONSE {
            return None;
        }
    }
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let json = buf[..end].strip_prefix(b"INFO ")?;
    serde_json::from_slice(json).ok()
}

/// `GET path` on the monitoring port; the body of a `200` answer.
pub(crate) fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = connect(port)?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut response)
        .ok()?;
    let text = String::from_utf8(response).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    if status_line.split_whitespace().nth(1)? != "200" {
        return None;
    }
    Some(body.to_owned())
}
