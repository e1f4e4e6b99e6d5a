//! A project's `compression`: answers compressed for clients that accept it (zstd or gzip,
//! as the client prefers), as nginx's `gzip` and HAProxy's `compression`. Pingora's
//! own encoder does the work (negotiation, compressible types, `Vary`, weakened `ETag`),
//! created only for the requests of projects that ask for it: the others pay one branch.
//!
//! Text formats only (`compressible_type`). As nginx: only `200`, `403` and `404` answers are
//! compressed (a `206`'s range is of the
//! uncompressed body, a `304` or `204` has none), never one the backend marked
//! `Cache-Control: no-transform` (RFC 9110 §7.7) or already encoded, nor a `HEAD`'s.

use super::context::RequestCtx;
use bytes::Bytes;
use pingora_core::protocols::http::compression::ResponseCompressionCtx;
use pingora_http::{RequestHeader, ResponseHeader};

/// The request's encoder, for a project compressing at `level` (`None`: off).
pub fn start(ctx: &mut RequestCtx, level: Option<u32>, req: &RequestHeader) {
    let Some(level) = level else { return };
    let Some(encoding) = req
        .headers
        .get(http::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(chosen_encoding)
    else {
        return;
    };
    // Pingora's encoder negotiates from the request's header: it is given the choice alone.
    let Ok(mut choice) = RequestHeader::build("GET", b"/", Some(1)) else {
        return;
    };
    if choice
        .insert_header(http::header::ACCEPT_ENCODING, encoding)
        .is_err()
    {
        return;
    }
    // No decompression for clients that do not accept a backend's encoding; ETags weakened.
    let mut encoder = Box::new(ResponseCompressionCtx::new(level, false, false));
    encoder.request_filter(&choice);
    ctx.compression = Some(encoder);
}

/// The encoding to answer in, from the client's `Accept-Encoding`: zstd or gzip, the one it
/// prefers (zstd on a tie: smaller and faster). Not brotli: Pingora 0.9.1's brotli encoder
/// ends a body with a flush, not the stream's last block, and decoders that check (the
/// `brotli` crate's) refuse it.
fn chosen_encoding(accept: &str) -> Option<&'static str> {
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let encoding = if name.eq_ignore_ascii_case("zstd") {
            "zstd"
        } else if name.eq_ignore_ascii_case("gzip") || name == "*" {
            "gzip"
        } else {
            continue;
        };
        let better = match best {
            None => true,
            Some((current, best_q)) => {
                q > best_q || (q == best_q && encoding == "zstd" && current != "zstd")
            }
        };
        if q > 0.0 && better {
            best = Some((encoding, q));
        }
    }
    best.map(|(encoding, _)| encoding)
}

/// Decides on the final answer's head `resp` (interim `1xx` answers pass by).
pub fn answer_head(ctx: &mut RequestCtx, req: &RequestHeader, resp: &mut ResponseHeader) {
    let Some(encoder) = ctx.compression.as_mut() else {
        return;
    };
    if !encoder.is_header_phase() || resp.status.is_informational() {
        return;
    }
    let status = resp.status.as_u16();
    let no_transform = resp
        .headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("no-transform"))
        });
    let compressible = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(compressible_type);
    // "No body" to the encoder: it leaves the answer as it is.
    let left_alone = !matches!(status, 200 | 403 | 404)
        || req.method == http::Method::HEAD
        || no_transform
        || !compressible;
    encoder.response_header_filter(resp, left_alone);
}

/// Text formats, which compress several times over (Pingora alone would take every
/// `application/` type, PDFs and archives included, which compress little or not at all).
fn compressible_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/xml"
                | "application/wasm"
                | "application/vnd.ms-fontobject"
                | "font/ttf"
                | "font/otf"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
        )
}

/// A piece of the answer's body, compressed in place when the answer is.
pub fn body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end: bool) {
    let Some(encoder) = ctx.compression.as_mut() else {
        return;
    };
    if encoder.is_header_phase() {
        return;
    }
    if let Some(compressed) = encoder.response_body_filter(body.as_ref(), end) {
        *body = Some(compressed);
    }
}

#[cfg(test)]
mod tests {
    use super::{chosen_encoding, compressible_type};

    #[test]
    fn the_clients_preferred_encoding_among_zstd_and_gzip() {
        assert_eq!(chosen_encoding("gzip, deflate, br"), Some("gzip"));
        assert_eq!(chosen_encoding("gzip, deflate, br, zstd"), Some("zstd"));
        assert_eq!(chosen_encoding("zstd;q=0.5, GZIP"), Some("gzip"));
        assert_eq!(chosen_encoding("br"), None);
        assert_eq!(chosen_encoding("gzip;q=0, identity"), None);
        assert_eq!(chosen_encoding("*"), Some("gzip"));
    }

    #[test]
    fn text_formats_are_compressed_and_binary_ones_are_not() {
        for t in [
            "text/html; charset=utf-8",
            "TEXT/CSS",
            "application/json",
            "application/problem+json",
            "application/rss+xml",
            "image/svg+xml",
        ] {
            assert!(compressible_type(t), "{t}");
        }
        for t in [
            "application/pdf",
            "application/zip",
            "image/png",
            "video/mp4",
            "",
        ] {
            assert!(!compressible_type(t), "{t}");
        }
    }
}
