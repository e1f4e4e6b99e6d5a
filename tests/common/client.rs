//! HTTP clients for tests (async and blocking), helpers to read the certificate a server
//! presented, and a raw HTTP/1 client for exact bytes on the wire.
//!
//! All clients: no redirects followed, no proxy from the environment, 10 s timeout.

use super::{CertFiles, Echo, TestCa};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Something whose PEM certificate a client can trust: a `TestCa` or a (self-signed)
/// `CertFiles`.
pub trait TrustPem {
    fn trust_pem(&self) -> String;
}

impl TrustPem for TestCa {
    fn trust_pem(&self) -> String {
        self.ca_pem()
    }
}

impl TrustPem for CertFiles {
    fn trust_pem(&self) -> String {
        self.ca_pem().to_string()
    }
}

// The async and blocking builders have the same methods; one macro configures both.
macro_rules! base {
    ($builder:expr) => {
        $builder
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(CLIENT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
    };
}

macro_rules! tls {
    ($builder:expr, $trust:expr, $resolve:expr) => {{
        let cert = reqwest::Certificate::from_pem($trust.trust_pem().as_bytes()).unwrap();
        let mut b = base!($builder)
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert)
            .tls_info(true);
        for (name, addr) in $resolve {
            b = b.resolve(name, *addr);
        }
        b
    }};
}

/// Async client for plain HTTP (HTTP/1.1).
pub fn http_client() -> reqwest::Client {
    base!(reqwest::Client::builder()).build().unwrap()
}

/// Async client speaking h2c (HTTP/2 with prior knowledge, no TLS).
pub fn h2c_client() -> reqwest::Client {
    base!(reqwest::Client::builder())
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// Async HTTPS client trusting `ca` only, sending each `(name, addr)` host to `addr`, with
/// TLS info kept (see `served_cert_der`). Offers ALPN h2 and http/1.1.
pub fn https_client(ca: &impl TrustPem, resolve: &[(&str, SocketAddr)]) -> reqwest::Client {
    tls!(reqwest::Client::builder(), ca, resolve)
        .build()
        .unwrap()
}

/// Like `https_client` but offering only ALPN h2: fails unless the server speaks HTTP/2.
pub fn h2_client(ca: &impl TrustPem, resolve: &[(&str, SocketAddr)]) -> reqwest::Client {
    tls!(reqwest::Client::builder(), ca, resolve)
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// Like `https_client` but offering only ALPN http/1.1.
pub fn https1_client(ca: &impl TrustPem, resolve: &[(&str, SocketAddr)]) -> reqwest::Client {
    tls!(reqwest::Client::builder(), ca, resolve)
        .http1_only()
        .build()
        .unwrap()
}

/// Blocking client for plain HTTP (for `#[test]` functions).
pub fn client() -> reqwest::blocking::Client {
    base!(reqwest::blocking::Client::builder()).build().unwrap()
}

/// Blocking `h2c_client`.
pub fn h2c_client_blocking() -> reqwest::blocking::Client {
    base!(reqwest::blocking::Client::builder())
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// The builder of the blocking HTTPS clients below, for a client of other settings (e.g. a
/// TLS version cap).
pub fn https_builder_blocking(
    ca: &impl TrustPem,
    resolve: &[(&str, SocketAddr)],
) -> reqwest::blocking::ClientBuilder {
    tls!(reqwest::blocking::Client::builder(), ca, resolve)
}

/// Blocking `https_client`.
pub fn https_client_blocking(
    ca: &impl TrustPem,
    resolve: &[(&str, SocketAddr)],
) -> reqwest::blocking::Client {
    https_builder_blocking(ca, resolve).build().unwrap()
}

/// Blocking `https1_client`.
pub fn https1_client_blocking(
    ca: &impl TrustPem,
    resolve: &[(&str, SocketAddr)],
) -> reqwest::blocking::Client {
    https_builder_blocking(ca, resolve)
        .http1_only()
        .build()
        .unwrap()
}

/// Blocking `h2_client`.
pub fn h2_client_blocking(
    ca: &impl TrustPem,
    resolve: &[(&str, SocketAddr)],
) -> reqwest::blocking::Client {
    https_builder_blocking(ca, resolve)
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// Blocking GET of `url` with `Host: host`.
pub fn get(url: &str, host: &str) -> reqwest::blocking::Response {
    client()
        .get(url)
        .header("host", host)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Blocking GET with `Host: host`, parsed as the upstream's echo (panics unless 200).
pub fn get_echo(url: &str, host: &str) -> Echo {
    let r = get(url, host);
    let status = r.status();
    let body = r.text().unwrap_or_default();
    assert_eq!(status, 200, "GET {url} (Host {host}): {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not an echo ({e}): {body}"))
}

/// Responses of both reqwest flavours, for the TLS helpers below.
pub trait HasExtensions {
    fn response_extensions(&self) -> &http::Extensions;
}

impl HasExtensions for reqwest::Response {
    fn response_extensions(&self) -> &http::Extensions {
        self.extensions()
    }
}

impl HasExtensions for reqwest::blocking::Response {
    fn response_extensions(&self) -> &http::Extensions {
        self.extensions()
    }
}

/// DER of the certificate the server presented (client built with `tls_info(true)`, as
/// the HTTPS clients here are). Compare with `CertFiles::cert_der()`.
pub fn served_cert_der(resp: &impl HasExtensions) -> Option<Vec<u8>> {
    resp.response_extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()
        .map(<[u8]>::to_vec)
}

/// DNS names (and IP addresses) in the subjectAltName of the presented certificate.
pub fn peer_cert_names(resp: &impl HasExtensions) -> Vec<String> {
    served_cert_der(resp)
        .map(|der| cert_san_names(&der))
        .unwrap_or_default()
}

/// subjectAltName DNS names and IP addresses of a DER certificate (minimal DER walk).
pub fn cert_san_names(der: &[u8]) -> Vec<String> {
    const SAN_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x11]; // 2.5.29.17
    let mut from = 0;
    while let Some(pos) = der[from..].windows(5).position(|w| w == SAN_OID) {
        let start = from + pos + SAN_OID.len();
        if let Some(names) = parse_san(der, start) {
            return names;
        }
        from = start;
    }
    Vec::new()
}

/// After the SAN OID: [critical BOOLEAN] OCTET STRING { SEQUENCE { GeneralName... } }.
fn parse_san(der: &[u8], mut i: usize) -> Option<Vec<String>> {
    if *der.get(i)? == 0x01 {
        let (_, end) = tlv(der, i)?;
        i = end;
    }
    (*der.get(i)? == 0x04).then_some(())?;
    let (octets, _) = tlv(der, i)?;
    (*der.get(octets)? == 0x30).then_some(())?;
    let (mut at, seq_end) = tlv(der, octets)?;
    let mut names = Vec::new();
    while at < seq_end {
        let (value, end) = tlv(der, at)?;
        let bytes = der.get(value..end)?;
        match der[at] {
            0x82 => names.push(String::from_utf8_lossy(bytes).into_owned()),
            0x87 if bytes.len() == 4 => {
                names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string())
            }
            0x87 if bytes.len() == 16 => {
                names.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string())
            }
            _ => {}
        }
        at = end;
    }
    Some(names)
}

fn tlv_header_len(der: &[u8], at: usize) -> Option<usize> {
    let first = *der.get(at + 1)?;
    Some(if first < 0x80 {
        2
    } else {
        2 + (first & 0x7f) as usize
    })
}

/// For the TLV at `at`: (start of value, end of value).
fn tlv(der: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *der.get(at + 1)?;
    let header = tlv_header_len(der, at)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        (n <= 4).then_some(())?;
        der.get(at + 2..at + 2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize)
    };
    let end = at + header + len;
    (end <= der.len()).then_some((at + header, end))
}

/// A response read by the raw client.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// e.g. `HTTP/1.1`
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked when `Transfer-Encoding: chunked`.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// First value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses an HTTP/1 response (status line, headers, body); `None` if malformed.
    pub fn parse(raw: &[u8]) -> Option<RawResponse> {
        let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..head_end]).ok()?;
        let mut lines = head.split("\r\n");
        let mut status_line = lines.next()?.splitn(3, ' ');
        let version = status_line.next()?.to_string();
        let status = status_line.next()?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut r = RawResponse {
            status,
            version,
            headers,
            body: raw[head_end + 4..].to_vec(),
        };
        if r.header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            r.body = dechunk(&r.body)?;
        } else if let Some(n) = r.header("content-length").and_then(|v| v.parse().ok()) {
            r.body.truncate(n);
        }
        Some(r)
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// Reads what the server sends on `conn` until it closes (or [`CLIENT_TIMEOUT`] passes with
/// nothing new), keeping what came before a reset.
pub fn read_to_close(conn: &mut TcpStream) -> Vec<u8> {
    conn.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    got
}

/// Reads one message head from `conn`, up to and with its blank line, a byte at a time (what
/// follows it stays unread: a body, the next request, a switched protocol). `Err` with the
/// bytes that came when the peer closed (or a read failed) before the head ended.
pub fn read_head(conn: &mut impl Read) -> Result<Vec<u8>, Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return Err(head),
        }
    }
    Ok(head)
}

/// Sends `request` as-is to `addr` and reads until the server closes the connection (or
/// 10 s pass without data). Use `Connection: close` in HTTP/1.1 requests.
pub fn raw_request(addr: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let sock = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("no address for {addr}")))?;
    let mut s = TcpStream::connect_timeout(&sock, CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        // A reset after the answer was received still gives the answer.
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(e),
    }
}

/// `GET path HTTP/1.1` with `Connection: close` and the given extra headers, parsed.
pub fn raw_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<RawResponse> {
    raw_get_host(addr, addr, path, headers)
}

/// [`raw_get`] with `Host: host`, for a project other than the catch-all.
pub fn raw_get_host(
    addr: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<RawResponse> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let raw = raw_request(addr, req.as_bytes())?;
    RawResponse::parse(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "malformed response: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}
