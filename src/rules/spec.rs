//! Rules as written in the configuration (and rules files).

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    #[serde(default)]
    pub priority: i32,
    #[serde(rename = "match", default)]
    pub matcher: MatchSpec,
    #[serde(default)]
    pub redirect: Option<RedirectSpec>,
    #[serde(default)]
    pub respond: Option<RespondSpec>,
    #[serde(default)]
    pub rewrite: Option<RewriteSpec>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub request_headers: Option<HeaderOpsSpec>,
    #[serde(default)]
    pub response_headers: Option<HeaderOpsSpec>,
    #[serde(default)]
    pub stop: bool,
}

impl RuleSpec {
    /// A rule with this id and `match`, priority 0 and no actions yet.
    pub fn new(id: String, matcher: MatchSpec) -> RuleSpec {
        RuleSpec {
            id,
            priority: 0,
            matcher,
            redirect: None,
            respond: None,
            rewrite: None,
            pool: None,
            request_headers: None,
            response_headers: None,
            stop: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub path_regex: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub query: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub not_headers: Option<Vec<String>>,
    #[serde(default)]
    pub client_ip: Option<Vec<String>>,
    /// Compare the path (exact, prefix, regex) without regard to case.
    #[serde(default)]
    pub case_insensitive: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedirectSpec {
    pub to: String,
    #[serde(default = "default_redirect_status")]
    pub status: u16,
    #[serde(default = "yes")]
    pub keep_query: bool,
}

fn default_redirect_status() -> u16 {
    301
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondSpec {
    pub status: u16,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewriteSpec {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderOpsSpec {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}
