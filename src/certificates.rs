//! What Rampart reads from X.509 certificates: the names they are for and when a served chain
//! stops working, as `check` warns about them and as the expiry metric and `/status` report
//! them (all from the same certificates of a file).

use chrono::NaiveDateTime;
use pingora_core::tls::x509::{X509Ref, X509VerifyResult, X509};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The DNS names of a certificate's subject alternative names, as written in it.
pub fn dns_names(x509: &X509Ref) -> Vec<String> {
    x509.subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A certificate's time (`not_before()`, `not_after()`: OpenSSL's `Asn1Time`, which this
/// crate's TLS re-exports do not name), before 1970 included.
pub fn time(at: &impl std::fmt::Display) -> Option<SystemTime> {
    parse(&at.to_string()).map(unix)
}

/// A time as OpenSSL prints it (`Nov 23 12:00:00 2027 GMT`), in UTC.
fn parse(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim_end_matches(" GMT"), "%b %e %H:%M:%S %Y").ok()
}

/// When a served chain stops working: the earliest end of the server's own certificate (the
/// first) and of the certificate in the file that issued it, with the index of the one that
/// ends first. Certificates beyond those (a cross-signed root, a root) are alternatives that
/// clients do without when they trust the root themselves: an old expired cross-sign left in
/// a `fullchain.pem` does not stop a chain from verifying, so it does not count.
pub fn chain_end(chain: &[X509]) -> Option<(SystemTime, usize)> {
    let leaf = chain.first()?;
    let issuer = chain
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, c)| c.issued(leaf) == X509VerifyResult::OK);
    std::iter::once((0, leaf))
        .chain(issuer)
        .filter_map(|(i, c)| Some((time(c.not_after())?, i)))
        .min_by_key(|(at, _)| *at)
}

/// Seconds since 1970, negative before.
pub fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// RFC 3339 with milliseconds, before 1970 included (humantime's formatter panics there).
pub fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A UTC time as a `SystemTime`, before 1970 included.
fn unix(at: NaiveDateTime) -> SystemTime {
    let secs = at.and_utc().timestamp();
    let since = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + since
    } else {
        UNIX_EPOCH - since
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn openssl_times_are_read_as_utc() {
        let at = super::parse("Nov  3 12:00:05 2027 GMT").unwrap();
        assert_eq!(at.and_utc().timestamp(), 1_825_243_205);
        assert!(super::parse("tomorrow").is_none());
    }
}
