//! Compiling the `match` part of a rule into [`Conditions`].

use crate::rules::compile::Errors;
use crate::rules::matcher::{
    Conditions, HeaderMatch, HostMatch, OtherConditions, PathMatch, QueryMatch,
};
use crate::rules::normalize::{cut_path_params, normalize_path, PathMatching};
use crate::rules::spec::MatchSpec;
use http::Method;
use ipnet::IpNet;

/// `.` or `..`, spelt with `%2e` or not (checked without allocating: 100 000 rules load).
fn is_dot_segment(seg: &str) -> bool {
    let (b, mut i, mut dots) = (seg.as_bytes(), 0, 0);
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
        } else if b[i..].len() >= 3 && b[i..i + 3].eq_ignore_ascii_case(b"%2e") {
            i += 3;
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

fn check_path(e: &mut Errors<'_>, field: &str, p: &str, paths: PathMatching) {
    // Request paths are matched normalized: a pattern with `.`/`..` segments or `//` would
    // match something else than it reads (`/%2e%2e/` matches `/`: the whole site).
    let dot_segment = p.split('/').any(is_dot_segment);
    if !p.starts_with('/') {
        e.add(field, format!("`{p}` must start with `/`"));
    } else if dot_segment || p.contains("//") {
        e.add(
            field,
            format!(
                "`{p}` has a `.` or `..` segment or `//`, which request paths lose before matching: it would match `{}`; write that instead",
                normalize_path(p)
            ),
        );
    } else if paths.ignore_params && p.contains(';') {
        // A legacy `;jsessionid=` URL in a CSV of redirects, say: a dead rule, not a silent one.
        e.add(
            field,
            format!(
                "`{p}` holds a `;`, but this project has `ignore_path_params: true`, which cuts each request's path parameters before matching: the rule could never match. Write the path without its parameters (`{}`)",
                cut_path_params(p)
            ),
        );
    } else if p.contains(['?', '#'])
        || p.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        e.add(
            field,
            format!("`{p}` must be a bare path: no query (use `match.query`), fragment or spaces"),
        );
    }
}

/// The conditions, and the capture group names of the path regex for templates.
pub fn conditions(
    e: &mut Errors<'_>,
    m: &MatchSpec,
    paths: PathMatching,
) -> (Conditions, Vec<Option<String>>) {
    let ci = m.case_insensitive;
    let given: Vec<&str> = [
        ("path", &m.path),
        ("path_prefix", &m.path_prefix),
        ("path_regex", &m.path_regex),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|_| k))
    .collect();
    if let [first, second, ..] = given.as_slice() {
        e.add(format!("match.{second}"), format!("`{first}` and `{second}` are both given: use at most one of path, path_prefix and path_regex"));
    }
    let mut groups = Vec::new();
    let path = if let Some(p) = &m.path {
        check_path(e, "match.path", p, paths);
        PathMatch::Exact(normalize_path(p).into())
    } else if let Some(p) = &m.path_prefix {
        check_path(e, "match.path_prefix", p, paths);
        PathMatch::Prefix(normalize_path(p).into())
    } else if let Some(r) = &m.path_regex {
        let src = if ci { format!("(?i){r}") } else { r.clone() };
        match e.path_regex("match.path_regex", &src) {
            Some(checked) if paths.ignore_params && checked.needs_semicolon => {
                e.add(
                    "match.path_regex",
                    format!("`{r}` only matches paths with a `;`, but this project has `ignore_path_params: true`, which cuts each request's path parameters before matching: the rule could never match. Write the regex without the parameters"),
                );
                PathMatch::Any
            }
            Some(checked) => {
                groups = checked.group_names;
                PathMatch::Regex(checked.regex)
            }
            None => PathMatch::Any,
        }
    } else {
        PathMatch::Any
    };

    let host = m.host.as_deref().and_then(|h| host(e, h));
    let methods = m.methods.as_ref().map(|list| {
        if list.is_empty() {
            e.add("match.methods", "the list is empty: give at least one method (e.g. [GET, HEAD]) or remove `methods`");
        }
        let valid = |x: &str| !x.is_empty() && Method::from_bytes(x.as_bytes()).is_ok();
        list.iter()
            .enumerate()
            .filter_map(|(i, x)| match valid(x) {
                true => Some(x.to_ascii_uppercase().into_boxed_str()),
                false => {
                    e.add(format!("match.methods[{i}]"), format!("`{x}` is not an HTTP method (e.g. GET, POST)"));
                    None
                }
            })
            .collect()
    });
    let scheme = m.scheme.as_deref().map(|s| {
        if !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https") {
            e.add(
                "match.scheme",
                format!("`{s}` is not a scheme: use http or https"),
            );
        }
        s.to_ascii_lowercase().into_boxed_str()
    });
    let mut query = Vec::new();
    for (k, v) in m.query.iter().flatten() {
        if k.is_empty() {
            e.add("match.query", "a query parameter name is empty");
        }
        query.push((
            k.as_str().into(),
            if v == "*" {
                QueryMatch::Present
            } else {
                QueryMatch::Exact(v.as_str().into())
            },
        ));
    }
    let headers = m
        .headers
        .iter()
        .flatten()
        .filter_map(|(k, v)| {
            let field = format!("match.headers.{k}");
            let name = e.header_name(&field, k)?;
            let m = match v.strip_prefix('~') {
                _ if v == "*" => HeaderMatch::Present,
                Some(re) => HeaderMatch::Regex(e.regex(&field, re)?),
                None => HeaderMatch::Exact(v.as_str().into()),
            };
            Some((name, m))
        })
        .collect();
    let not_headers = m
        .not_headers
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, k)| e.header_name(&format!("match.not_headers[{i}]"), k))
        .collect();
    let client_ip = m.client_ip.as_ref().map(|list| {
        if list.is_empty() {
            e.add("match.client_ip", "the list is empty: give networks (e.g. [10.0.0.0/8]) or remove `client_ip`");
        }
        list.iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = c.trim();
                c.parse::<IpNet>()
                    .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        let hint = "use an address or a CIDR network, e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32";
                        e.add(format!("match.client_ip[{i}]"), format!("`{c}` is not an IP address or network: {hint}"))
                    })
                    .ok()
            })
            .collect()
    });
    let other = OtherConditions {
        host,
        methods,
        scheme,
        query,
        headers,
        not_headers,
        client_ip,
    };
    let cond = Conditions {
        path,
        case_insensitive: ci,
        needs_captures: false,
        other: (!other.is_empty()).then(|| Box::new(other)),
    };
    (cond, groups)
}

fn host(e: &mut Errors<'_>, h: &str) -> Option<HostMatch> {
    let lower = h.trim().trim_end_matches('.').to_ascii_lowercase();
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ip6 = name.starts_with('[') && name.ends_with(']');
    if !(ip6 || name.split('.').all(label_ok)) {
        let hint = "use a host name such as www.example.com or *.example.com (any subdomain), without port";
        e.add("match.host", format!("`{h}` is not a host: {hint}"));
        return None;
    }
    Some(if wild {
        HostMatch::Subdomains(format!(".{name}").into())
    } else {
        HostMatch::Exact(name.into())
    })
}

#[cfg(test)]
mod tests {
    use crate::rules::compile::test_support::check;

    #[test]
    fn conditions() {
        check(
            "[{id: a, match: {path_regex: '^/(unclosed'}}]",
            "match.path_regex",
            "invalid regular expression",
        );
        check(
            "[{id: a, match: {path_prefix: '/%2e%2e/'}}]",
            "match.path_prefix",
            "it would match `/`",
        );
        check(
            "[{id: a, match: {path: '/a/../secret'}}]",
            "match.path",
            "it would match `/secret`",
        );
        check("[{id: a, match: {path: '//a'}}]", "match.path", "`//`");
        check(
            "[{id: a, match: {path: /a, path_prefix: /b}}]",
            "match.path_prefix",
            "at most one of path, path_prefix and path_regex",
        );
        check(
            "[{id: a, match: {path_prefix: /b, path_regex: x}}]",
            "match.path_regex",
            "`path_prefix` and `path_regex`",
        );
        check(
            "[{id: a, match: {path: old}}]",
            "match.path",
            "must start with `/`",
        );
        check(
            "[{id: a, match: {path: '/a?b=1'}}]",
            "match.path",
            "use `match.query`",
        );
        check(
            "[{id: a, match: {client_ip: [10.0.0.0/8, 10.0.0.0/33]}}]",
            "match.client_ip[1]",
            "not an IP address or network",
        );
        check(
            "[{id: a, match: {client_ip: [intranet]}}]",
            "match.client_ip[0]",
            "e.g. 10.0.0.0/8",
        );
        check(
            "[{id: a, match: {client_ip: []}}]",
            "match.client_ip",
            "empty",
        );
        check(
            "[{id: a, match: {headers: {'X Bad': '*'}}}]",
            "match.headers.X Bad",
            "not a valid header name",
        );
        check(
            "[{id: a, match: {headers: {X-A: '~(('}}}]",
            "match.headers.X-A",
            "invalid regular expression",
        );
        check(
            "[{id: a, match: {not_headers: [ok, 'b@d']}}]",
            "match.not_headers[1]",
            "not a valid header name",
        );
        check(
            "[{id: a, match: {host: 'shop.test:8080'}}]",
            "match.host",
            "without port",
        );
        check(
            "[{id: a, match: {host: '*'}}]",
            "match.host",
            "*.example.com",
        );
        check(
            "[{id: a, match: {methods: [GET, 'G T']}}]",
            "match.methods[1]",
            "not an HTTP method",
        );
        check(
            "[{id: a, match: {scheme: ftp}}]",
            "match.scheme",
            "use http or https",
        );
    }
}
