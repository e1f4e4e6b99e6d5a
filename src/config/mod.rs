//! Configuration: environment interpolation, strict parsing, validation into [`Config`].

mod env;
pub(crate) mod error;
pub(crate) mod every_error;
mod model;
pub(crate) mod position;
mod raw;
mod schema;
mod summary;
mod validate;

pub use env::{interpolate, EnvError};
pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use schema::{config_schema, rules_file_schema};
pub use summary::summary;
pub use validate::{lookup_backend, overlaps};

use std::path::Path;

/// Where `rampart` looks for its configuration when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rampart/rampart.yaml";

/// How a configuration is checked.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Backends given by host name are resolved (false: `check --no-resolve`, on a machine
    /// that cannot resolve the fleet's names; they are then checked for their form alone).
    pub resolve_names: bool,
    /// A name that does not resolve is a warning, not an error: the pool starts without its
    /// addresses and looks it up again until it resolves (a fresh `run`, whose alternative
    /// is no process at all; `check` and an upgrade, which leaves the old process serving,
    /// keep it an error).
    pub start_unresolved: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            resolve_names: true,
            start_unresolved: false,
        }
    }
}

/// Reads, interpolates, parses and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, LoadOptions::default())
}

/// [`load`] with `options`.
pub fn load_with(path: &Path, options: LoadOptions) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: if e.kind() == std::io::ErrorKind::InvalidData {
                "the configuration file is not UTF-8 text: save it as UTF-8".to_string()
            } else {
                format!("cannot read the configuration file: {e} (check the path given with -c and its permissions)")
            },
        })
    })?;
    // A byte-order mark (editors on Windows write one) is not YAML.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    load_text(path, text, |name| std::env::var(name).ok(), options)
}

/// Like [`load`] for a text already read; `env` resolves `${VAR}`.
pub fn load_str(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    load_text(path, text, env, LoadOptions::default())
}

fn load_text(
    path: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
    options: LoadOptions,
) -> Result<Config, ConfigErrors> {
    let text = interpolate(text, env).map_err(|errors| {
        // Named by key path too, found in the text before interpolation (`${X}` is YAML).
        let index = position::PositionIndex::build(text);
        ConfigErrors(
            errors
                .into_iter()
                .map(|e| ConfigError {
                    file: path.to_path_buf(),
                    line: e.line,
                    column: e.column,
                    key: index
                        .key_at(e.line, e.column)
                        .unwrap_or_default()
                        .to_string(),
                    message: e.message,
                })
                .collect(),
        )
    })?;
    validate::validate(path, &text, options)
}
