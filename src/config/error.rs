//! Configuration errors: every one names the file, the position and the key path, and says
//! how to fix it, as `FILE:LINE:COLUMN: key.path: message`.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no position (e.g. unreadable file).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    /// Dotted key path, e.g. `projects[0].rules[2].match.path_regex`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(
            f,
            &self.file,
            (self.line, self.column),
            &self.key,
            &self.message,
        )
    }
}

/// `FILE:LINE:COLUMN: key: message`, as compilers print (editors jump to it); a problem with
/// no position (an unreadable file) is `FILE: message`, not a made-up `FILE:0:0`.
pub fn write_located(
    f: &mut fmt::Formatter<'_>,
    file: &std::path::Path,
    (line, column): (usize, usize),
    key: &str,
    message: &str,
) -> fmt::Result {
    write!(f, "{}:", file.display())?;
    if line > 0 {
        write!(f, "{line}:{column}:")?;
    }
    f.write_str(" ")?;
    if !key.is_empty() {
        write!(f, "{key}: ")?;
    }
    f.write_str(message)
}

/// All the problems of one configuration file (never empty).
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    pub fn single(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}
