//! The PostgreSQL SSLRequest, sent by hand: the 8 bytes of the request
//! (length 8, code 80877103) and the server's one-byte answer, `S` when it
//! will speak TLS and `N` when it will not. This tells "the server refuses
//! TLS" apart from "the server cannot be reached", which a failed TLS
//! connection alone does not.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The SSLRequest message: Int32 length 8, Int32 code 1234 << 16 | 5679.
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAnswer {
    /// `S`: the server will start a TLS handshake.
    Accepted,
    /// `N`: the server does not do TLS (`ssl = off`).
    Refused,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer the SSLRequest: {source}")]
    Exchange {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} answered the SSLRequest with byte 0x{byte:02x}, neither 'S' nor 'N': is it a PostgreSQL server?")]
    NotPostgres { addr: String, byte: u8 },
}

/// Sends the SSLRequest to `host:port` and reads the answer. The
/// connection is closed right after; no TLS handshake is made.
pub fn ssl_request(host: &str, port: u16, timeout: Duration) -> Result<TlsAnswer, ProbeError> {
    let addr = format!("{host}:{port}");
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|source| ProbeError::Connect {
            addr: addr.clone(),
            source,
        })?
        .collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut s = stream.ok_or(ProbeError::Connect {
        addr: addr.clone(),
        source: last,
    })?;
    let ex = |source| ProbeError::Exchange {
        addr: addr.clone(),
        source,
    };
    s.set_read_timeout(Some(timeout)).map_err(ex)?;
    s.set_write_timeout(Some(timeout)).map_err(ex)?;
    s.write_all(&SSL_REQUEST).map_err(ex)?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).map_err(ex)?;
    match b[0] {
        b'S' => Ok(TlsAnswer::Accepted),
        b'N' => Ok(TlsAnswer::Refused),
        byte => Err(ProbeError::NotPostgres { addr, byte }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A listener that checks the request bytes and answers with `reply`.
    fn fake_server(reply: &'static [u8]) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        thread::spawn(move || {
            if let Ok((mut c, _)) = l.accept() {
                let mut req = [0u8; 8];
                if c.read_exact(&mut req).is_ok() && req == SSL_REQUEST {
                    let _ = c.write_all(reply);
                }
            }
        });
        port
    }

    #[test]
    fn answers_are_read() {
        let t = Duration::from_secs(5);
        assert_eq!(
            ssl_request("127.0.0.1", fake_server(b"S"), t).ok(),
            Some(TlsAnswer::Accepted)
        );
        assert_eq!(
            ssl_request("127.0.0.1", fake_server(b"N"), t).ok(),
            Some(TlsAnswer::Refused)
        );
        assert!(matches!(
            ssl_request("127.0.0.1", fake_server(b"E"), t),
            Err(ProbeError::NotPostgres { byte: b'E', .. })
        ));
        // Closed without an answer.
        assert!(matches!(
            ssl_request("127.0.0.1", fake_server(b""), t),
            Err(ProbeError::Exchange { .. })
        ));
    }

    #[test]
    fn nothing_listening_is_a_connect_error() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        assert!(matches!(
            ssl_request("127.0.0.1", port, Duration::from_secs(2)),
            Err(ProbeError::Connect { .. })
        ));
    }
}
