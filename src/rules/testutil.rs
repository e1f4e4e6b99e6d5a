//! Test helpers shared by the rule tests: YAML rule sets, requests, a deterministic generator.

use crate::rules::{Plan, RequestView, RuleError, RuleSet, RuleSpec};
use std::net::IpAddr;

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

pub fn specs(yaml: &str) -> Vec<RuleSpec> {
    serde_yaml::from_str(yaml).expect("rules YAML")
}

pub fn rules(yaml: &str) -> RuleSet {
    RuleSet::compile(&specs(yaml)).unwrap_or_else(|e| panic!("rules must compile: {e:?}"))
}

pub fn errors(yaml: &str) -> Vec<RuleError> {
    match RuleSet::compile(&specs(yaml)) {
        Ok(_) => panic!("rules must not compile"),
        Err(e) => e,
    }
}

/// An owned request, viewed as a [`RequestView`].
pub struct Req {
    pub method: &'static str,
    pub scheme: &'static str,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    pub ip: Option<IpAddr>,
}

/// `GET https://shop.test{uri}` from 10.1.2.3.
pub fn req(uri: &str) -> Req {
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (uri.to_string(), None),
    };
    Req {
        method: "GET",
        scheme: "https",
        host: "shop.test".to_string(),
        path,
        query,
        headers: http::HeaderMap::new(),
        ip: Some("10.1.2.3".parse().unwrap()),
    }
}

impl Req {
    pub fn header(mut self, name: &'static str, value: &str) -> Req {
        self.headers.append(name, value.parse().unwrap());
        self
    }

    pub fn method(mut self, m: &'static str) -> Req {
        self.method = m;
        self
    }

    pub fn scheme(mut self, s: &'static str) -> Req {
        self.scheme = s;
        self
    }

    pub fn host(mut self, h: &str) -> Req {
        self.host = h.to_string();
        self
    }

    pub fn ip(mut self, ip: Option<&str>) -> Req {
        self.ip = ip.map(|s| s.parse().unwrap());
        self
    }

    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: self.method,
            scheme: self.scheme,
            host: &self.host,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            client_ip: self.ip,
            request_id: "rid-1",
        }
    }

    /// Evaluates with the index and checks the reference evaluation agrees.
    pub fn eval(&self, set: &RuleSet) -> Plan {
        let plan = set.evaluate(&self.view());
        assert_eq!(
            plan,
            set.evaluate_reference(&self.view()),
            "indexed and reference differ"
        );
        plan
    }

    /// The ids of the rules that matched.
    pub fn ids(&self, set: &RuleSet) -> Vec<String> {
        self.eval(set)
            .matched
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}
