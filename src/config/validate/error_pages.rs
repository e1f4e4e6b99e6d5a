//! `projects[].error_pages`: a project's own pages for the errors Rampart answers itself, as
//! nginx's `error_page` and HAProxy's `errorfile`. Read once at load, kept in memory: an error
//! page must not depend on the disk when things already go wrong.

use super::Checker;
use crate::config::model::{ErrorPage, ErrorPages};
use std::collections::BTreeMap;
use std::path::Path;

/// The statuses Rampart answers itself for a project's request: a request it cannot read
/// (400), a body too slow (408) or too large (413), a client over `rate_limit` (429), its own
/// failure (500), and the backends' (502 unreachable, 503 none available, 504 too slow).
/// Every other status comes from a backend or a rule, which say their own.
const OWN_STATUSES: [u16; 8] = [400, 408, 413, 429, 500, 502, 503, 504];

/// Larger than any page a person reads, small enough to keep for each project.
const MAX_PAGE: u64 = 1024 * 1024;

pub(super) fn error_pages(
    ck: &mut Checker,
    key: &str,
    raw: &BTreeMap<u16, String>,
    base: &Path,
) -> ErrorPages {
    let mut pages = Vec::new();
    for (&status, file) in raw {
        let key = format!("{key}.error_pages.{status}");
        if !OWN_STATUSES.contains(&status) {
            let own: Vec<String> = OWN_STATUSES.iter().map(u16::to_string).collect();
            ck.error(
                key,
                format!("Rampart answers {status} only when a backend or a rule does, with their own page: error pages are for the statuses Rampart answers itself, {}", own.join(", ")),
            );
            continue;
        }
        let Some(content_type) = content_type(file) else {
            ck.error(
                key,
                format!("`{file}`: name the page .html, .htm, .json or .txt (its Content-Type follows from it)"),
            );
            continue;
        };
        let path = base.join(file);
        let path = path.display().to_string();
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.len() > MAX_PAGE {
                ck.error(
                    key,
                    format!(
                        "`{path}` is {} bytes: an error page may have 1 MiB at most",
                        meta.len()
                    ),
                );
                continue;
            }
        }
        let Some(body) = ck.read_file(&key, &path) else {
            continue;
        };
        let page = ErrorPage {
            content_type: http::HeaderValue::from_static(content_type),
            body: body.into(),
        };
        pages.push((status, page));
    }
    ErrorPages::new(pages)
}

fn content_type(file: &str) -> Option<&'static str> {
    let extension = Path::new(file).extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}
