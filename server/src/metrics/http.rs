//! The metrics endpoint: just enough HTTP/1.1 to answer `GET /metrics` with
//! Prometheus text and anything else with 404, one request per connection.
//! A full HTTP stack would be a large dependency for one fixed page.

use crate::limits::{METRICS_CONNECTIONS_MAX, METRICS_REQUEST_BYTES_MAX, METRICS_REQUEST_MS_MAX};
use ringtail_engine::watch;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Produces the page body at scrape time.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves until `shutdown` turns true.
pub fn serve(
    listener: TcpListener,
    render: Render,
    mut shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> {
    let slots = Arc::new(Semaphore::new(METRICS_CONNECTIONS_MAX));
    async move {
        loop {
            let accepted = tokio::select! {
            biased;
                    accepted = listener.accept() => accepted,
                    _ = crate::shutdown::signalled(&mut shutdown) => return,
                };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather
                    // than spin on the error.
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Scrapers are few; beyond the limit a connection is dropped
            // rather than queued.
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "metrics listener: too many connections");
                continue;
            };
            let render = render.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, render).await {
                    tracing::debug!(%peer, error = %e, "metrics connection failed");
                }
                drop(slot);
            });
        }
    }
}

async fn answer(mut stream: TcpStream, render: Render) -> std::io::Result<()> {
    let head = tokio::time::timeout(Duration::from_millis(METRICS_REQUEST_MS_MAX), read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timed out"))??;
    let response = match request_target(&head) {
        Some(("GET", "/metrics")) => {
            let body = render();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Some(_) => simple(404, "Not Found"),
        None => simple(400, "Bad Request"),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn simple(code: u16, reason: &str) -> String {
    format!("HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Reads until the blank line that ends the request head, at most
/// `METRICS_REQUEST_BYTES_MAX` bytes.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= METRICS_REQUEST_BYTES_MAX {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(head)
}

/// The method and path of the request line (query string dropped).
fn request_target(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split('?').next()?;
    Some((method, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_lines() {
        assert_eq!(request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Some(("GET", "/metrics")));
        assert_eq!(request_target(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Some(("GET", "/metrics")));
        assert_eq!(request_target(b"POST / HTTP/1.1\r\n\r\n"), Some(("POST", "/")));
        assert_eq!(request_target(b"garbage"), None);
        assert_eq!(request_target(b"\xff\xfe GET"), None);
    }
}
