//! The configuration file's JSON Schema, derived from the serde structs of `raw.rs` and
//! `rules::spec` (and, for `server:`, from Pingora's `ServerConf`), so that documentation and
//! tools can be checked against the keys Rampart really accepts.

use super::raw::{RawCompression, RawConfig, RawUpstreamTls};
use pingora_core::server::configuration::ServerConf;
use schemars::{json_schema, Schema, SchemaGenerator};

/// The JSON Schema (draft 2020-12) of the configuration file.
pub fn config_schema() -> serde_json::Value {
    schemars::schema_for!(RawConfig).to_value()
}

/// The JSON Schema of a YAML rules file (`rules_files:`): a list of rules.
pub fn rules_file_schema() -> serde_json::Value {
    schemars::schema_for!(Vec<crate::rules::RuleSpec>).to_value()
}

/// The keys accepted under `server:`: the field names of Pingora's `ServerConf`.
pub(super) fn server_keys() -> Vec<String> {
    match serde_yaml::to_value(ServerConf::default()) {
        Ok(serde_yaml::Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// `server:` is kept as a YAML mapping (Pingora parses it); its schema lists `ServerConf`'s keys.
pub(super) fn server_schema(_: &mut SchemaGenerator) -> Schema {
    let properties: serde_json::Map<String, serde_json::Value> = server_keys()
        .into_iter()
        .map(|k| (k, serde_json::json!({})))
        .collect();
    json_schema!({
        "type": "object",
        "description": "Pingora ServerConf settings, under their Pingora names",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// `tls: false | true | { sni, verify, ca_file }` (parsed by hand in `raw.rs`).
/// Status → file: written as a map of any keys (the statuses are checked on load), which
/// editors and the docs' key check read as one entry per status.
pub(super) fn error_pages_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": { "pattern": "^[1-5][0-9][0-9]$" },
        "additionalProperties": { "type": "string" },
    })
}

pub(super) fn compression_schema(generator: &mut SchemaGenerator) -> Schema {
    let settings = generator.subschema_for::<RawCompression>();
    json_schema!({
        "anyOf": [{ "type": "boolean" }, settings],
    })
}

pub(super) fn upstream_tls_schema(generator: &mut SchemaGenerator) -> Schema {
    let settings = generator.subschema_for::<RawUpstreamTls>();
    json_schema!({
        "anyOf": [{ "type": "boolean" }, settings],
    })
}
