//! Access log: the request path formats its line into its thread's pending text (`queue`;
//! never waiting on I/O, and dropping the line, counted, when the writer has fallen far behind);
//! a background service takes each thread's text and writes it in batches (`writer`). A
//! line is a finished request (`record`) in the configured format, its fields escaped as
//! nginx escapes them (`field_text`).

mod field_text;
mod json_line;
mod queue;
mod record;
mod writer;

pub use queue::AccessLogger;
pub use record::{Failure, LogRecord, RequestLine, TimeCache};
pub use writer::{access_log, AccessLogFinisher, AccessLogWriter};

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    Off,
    File(PathBuf),
}

impl LogTarget {
    /// `stdout`, `stderr`, `off` (any case) or an absolute path: a relative one would depend
    /// on the directory Rampart was started from (`OFF` made a file named OFF there).
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "stdout" => LogTarget::Stdout,
            "stderr" => LogTarget::Stderr,
            "off" | "" => LogTarget::Off,
            _ if s.starts_with('/') => LogTarget::File(s.into()),
            _ => {
                return Err(format!(
                    "`{s}` is not stdout, stderr, off or an absolute path (e.g. /var/log/rampart/access.log)"
                ))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ClientIp,
    Time,
    Method,
    Uri,
    Path,
    Query,
    Host,
    Protocol,
    Status,
    Bytes,
    DurationMs,
    Referer,
    UserAgent,
    RequestId,
    Project,
    Upstream,
    TlsVersion,
    TlsCipher,
    Rules,
    Error,
}

const FIELDS: &[(&str, Field)] = &[
    ("client_ip", Field::ClientIp),
    ("time", Field::Time),
    ("method", Field::Method),
    ("uri", Field::Uri),
    ("path", Field::Path),
    ("query", Field::Query),
    ("host", Field::Host),
    ("protocol", Field::Protocol),
    ("status", Field::Status),
    ("bytes", Field::Bytes),
    ("duration_ms", Field::DurationMs),
    ("referer", Field::Referer),
    ("user_agent", Field::UserAgent),
    ("request_id", Field::RequestId),
    ("project", Field::Project),
    ("upstream", Field::Upstream),
    ("tls_version", Field::TlsVersion),
    ("tls_cipher", Field::TlsCipher),
    ("rules", Field::Rules),
    ("error", Field::Error),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    Combined,
    Json,
    Template(Vec<Piece>),
}

impl LogFormat {
    /// `combined`, `json`, or a template such as `{client_ip} {method} {uri} {status}`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "combined" => return Ok(LogFormat::Combined),
            "json" => return Ok(LogFormat::Json),
            _ => {}
        }
        if !s.contains('{') {
            // `JSON ` or `comibned` would log the same literal line for every request.
            return Err(format!(
                "`{s}` is not combined, json or a template with at least one {{field}} (e.g. \"{{client_ip}} {{method}} {{uri}} {{status}}\")"
            ));
        }
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in `{s}`"))?
                + open;
            let name = &rest[open + 1..close];
            let field = FIELDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                    format!(
                        "unknown field `{{{name}}}`: use combined, json or a template of {}",
                        known.join(", ")
                    )
                })?;
            pieces.push(Piece::Field(field));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(LogFormat::Template(pieces))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_template_field() {
        let e = LogFormat::parse("{client_ip} {nope}").unwrap_err();
        assert!(e.contains("unknown field `{nope}`"), "{e}");
    }
}
