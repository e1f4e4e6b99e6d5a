//! The keys the configuration accepts, read from the JSON Schema derived from Rampart's serde
//! structs (`rampart::config::config_schema`): every key as a dotted path, with `*` standing
//! for a map entry or a list item, e.g. `pools.*.health_check.interval` or
//! `projects.*.rules.*.match.path_prefix`.

use serde_json::Value;
use std::collections::BTreeMap;

/// What the schema says about one key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub required: bool,
    /// The serde default, when the schema knows it (types with `Serialize`).
    pub default: Option<Value>,
}

pub struct Schema {
    root: Value,
}

/// The keys of an object schema (all its alternatives together) and the schema of the values
/// of a map (`additionalProperties`), if it is one.
struct Shape<'a> {
    properties: BTreeMap<&'a str, &'a Value>,
    required: Vec<&'a str>,
    entries: Option<&'a Value>,
}

/// `parent.key`, or `key` at the top level.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Schema {
    /// The configuration file.
    pub fn config() -> Schema {
        Schema {
            root: rampart::config::config_schema(),
        }
    }

    /// A rules file: a YAML list of rules.
    pub fn rules_file() -> Schema {
        Schema {
            root: rampart::config::rules_file_schema(),
        }
    }

    /// Follows `$ref` to `#/$defs/NAME`.
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r
                    .strip_prefix("#/$defs/")
                    .unwrap_or_else(|| panic!("unexpected $ref {r}"));
                self.resolve(&self.root["$defs"][name])
            }
            None => node,
        }
    }

    /// The node itself and, recursively, its `anyOf`/`oneOf`/`allOf` members, resolved.
    fn alternatives<'a>(&'a self, node: &'a Value) -> Vec<&'a Value> {
        let node = self.resolve(node);
        let mut out = vec![node];
        for combinator in ["anyOf", "oneOf", "allOf"] {
            for member in node[combinator].as_array().into_iter().flatten() {
                out.extend(self.alternatives(member));
            }
        }
        out
    }

    fn shape<'a>(&'a self, node: &'a Value) -> Shape<'a> {
        let mut shape = Shape {
            properties: BTreeMap::new(),
            required: Vec::new(),
            entries: None,
        };
        for alt in self.alternatives(node) {
            for (k, v) in alt["properties"].as_object().into_iter().flatten() {
                shape.properties.insert(k, v);
            }
            for r in alt["required"].as_array().into_iter().flatten() {
                shape.required.extend(r.as_str());
            }
            if let Some(entries) = alt.get("additionalProperties").filter(|v| v.is_object()) {
                shape.entries = Some(entries);
            }
        }
        shape
    }

    fn items<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        self.alternatives(node)
            .into_iter()
            .find_map(|alt| alt.get("items"))
    }

    /// Every key path of the file, with what the schema says about it.
    pub fn keys(&self) -> BTreeMap<String, KeyInfo> {
        let mut out = BTreeMap::new();
        self.collect("", &self.root, &mut out);
        out
    }

    fn collect(&self, path: &str, node: &Value, out: &mut BTreeMap<String, KeyInfo>) {
        let shape = self.shape(node);
        for (name, value) in &shape.properties {
            let key = join(path, name);
            let default = value.get("default").filter(|d| !d.is_null()).cloned();
            out.insert(
                key.clone(),
                KeyInfo {
                    required: shape.required.contains(name),
                    default,
                },
            );
            self.collect(&key, value, out);
        }
        // Map values and list items: their keys (if they have any) are under `*`.
        if let Some(entries) = shape.entries {
            self.collect(&join(path, "*"), entries, out);
        }
        if let Some(items) = self.items(node) {
            self.collect(&join(path, "*"), items, out);
        }
    }

    /// The keys of `value` (a parsed YAML document) that the schema does not accept, as paths.
    pub fn unknown_keys(&self, value: &serde_yaml::Value) -> Vec<String> {
        let mut out = Vec::new();
        self.check(value, &self.root, "", &mut out);
        out
    }

    fn check(&self, value: &serde_yaml::Value, node: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            serde_yaml::Value::Mapping(m) => {
                let shape = self.shape(node);
                for (k, v) in m {
                    let name = match k {
                        serde_yaml::Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap_or_default(),
                    };
                    match (shape.properties.get(name.as_str()), shape.entries) {
                        (Some(schema), _) => self.check(v, schema, &join(path, &name), out),
                        (None, Some(entries)) => self.check(v, entries, &join(path, "*"), out),
                        (None, None) => out.push(join(path, &name)),
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => {
                if let Some(schema) = self.items(node) {
                    for item in items {
                        self.check(item, schema, &join(path, "*"), out);
                    }
                }
            }
            serde_yaml::Value::Tagged(t) => self.check(&t.value, node, path, out),
            _ => {}
        }
    }
}
