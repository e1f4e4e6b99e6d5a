//! Validity times of X.509 certificates, as `check` warns about them and as the expiry
//! metric and `/status` report them.

use chrono::NaiveDateTime;
use pingora_core::tls::x509::X509;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A time as OpenSSL prints it (`Nov 23 12:00:00 2027 GMT`), in UTC.
pub fn parse(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim_end_matches(" GMT"), "%b %e %H:%M:%S %Y").ok()
}

/// When the first certificate of `chain` stops being valid: a chain is refused once any of
/// its certificates has expired, an intermediate's included.
pub fn earliest_not_after(chain: &[X509]) -> Option<SystemTime> {
    chain
        .iter()
        .filter_map(|c| parse(&c.not_after().to_string()))
        .map(|at| {
            let secs = at.and_utc().timestamp();
            UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        })
        .min()
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
