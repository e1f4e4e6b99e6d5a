//! Rules files: YAML rule lists and CSV redirect lists named by glob patterns, compiled
//! together with a project's inline rules. Errors name the file, line and column.

use super::csv_file::{is_csv, parse_csv};
use super::normalize::PathMatching;
use super::spec::RuleSpec;
use super::{RuleError, RuleSet};
use crate::config::every_error::{describe, errors_of, second_document};
use crate::config::position::PositionIndex;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A problem in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Key path inside the file, e.g. `[3].match.path_regex` (empty for CSV and I/O errors).
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::config::error::write_located(
            f,
            &self.path,
            (self.line, self.column),
            &self.key,
            &self.message,
        )
    }
}

/// What a rules file looked like when it was read, to notice changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    pub path: PathBuf,
    pub modified: Option<SystemTime>,
    pub len: u64,
    /// Inode and status-change time: `cp -p`, `rsync -a` or `tar` keep the modification time,
    /// and an edit may keep the length, but a new file or a rewrite changes these.
    pub inode: u64,
    pub changed: (i64, i64),
}

impl FileStamp {
    fn from_metadata(path: PathBuf, m: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
            changed: (m.ctime(), m.ctime_nsec()),
            path,
        }
    }

    /// The stamp of one file, `None` when it cannot be read.
    pub fn of(path: &std::path::Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp::from_metadata(path.to_path_buf(), &m))
    }
}

/// Where a rule of the combined list came from.
enum Origin {
    Inline(usize),
    Yaml { file: usize, item: usize },
    Csv { file: usize, line: usize },
}

impl Origin {
    /// Where the rule is, for a message about another rule: `inline rule 2`,
    /// `rule [0] of FILE`, `FILE:LINE`.
    fn place(&self, stamps: &[FileStamp]) -> String {
        match self {
            Origin::Inline(i) => format!("inline rule {i}"),
            Origin::Yaml { file, item } => {
                format!("rule [{item}] of {}", stamps[*file].path.display())
            }
            Origin::Csv { file, line } => format!("{}:{line}", stamps[*file].path.display()),
        }
    }
}

/// The combined, compiled rules of a project.
#[derive(Debug)]
pub struct ProjectRules {
    pub set: RuleSet,
    pub stamps: Vec<FileStamp>,
}

/// Everything that went wrong: inline errors (the config locates them) and file errors.
#[derive(Debug, Default)]
pub struct LoadErrors {
    pub inline: Vec<RuleError>,
    pub files: Vec<FileError>,
}

impl std::fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inline = self
            .inline
            .iter()
            .map(|e| format!("inline rules[{}].{}: {}", e.index, e.field, e.message));
        let files = self.files.iter().map(|e| e.to_string());
        f.write_str(&inline.chain(files).collect::<Vec<_>>().join("; "))
    }
}

/// The files `patterns` name now, sorted, with their stamps. A pattern without wildcards
/// must name an existing file; a wildcard pattern may match nothing.
pub fn stamps(patterns: &[String]) -> Result<Vec<FileStamp>, Vec<FileError>> {
    let (found, errors) = collect(patterns);
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// The files found and the problems met, both.
fn collect(patterns: &[String]) -> (Vec<FileStamp>, Vec<FileError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in patterns {
        let io_error = |message: String| FileError {
            path: PathBuf::from(p),
            line: 0,
            column: 0,
            key: String::new(),
            message,
        };
        // As a shell globs: `*.yaml` does not match `.#site.yaml` (an editor's lock link) or
        // `._site.yaml` (macOS metadata), which would break every reload while they exist.
        let shell_like = glob::MatchOptions {
            require_literal_leading_dot: true,
            ..Default::default()
        };
        let literal = !p.contains(['*', '?', '[']);
        let paths: Vec<PathBuf> = if literal {
            // The path alone: the glob crate also looks at every directory on the way to it,
            // and the reloader does this every second for every project.
            vec![PathBuf::from(p)]
        } else {
            match glob::glob_with(p, shell_like) {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(e) => {
                    errors.push(io_error(format!("not a valid glob pattern: {e}")));
                    continue;
                }
            }
        };
        for path in paths {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => out.push(FileStamp::from_metadata(path, &m)),
                Ok(m) if m.is_dir() && literal => errors.push(io_error(format!(
                    "is a directory: name its files, e.g. {}/*.csv",
                    p.trim_end_matches('/')
                ))),
                Ok(_) => {}
                Err(e) if literal && e.kind() == std::io::ErrorKind::NotFound => {
                    errors.push(io_error("no such file (check rules_files)".into()))
                }
                Err(e) => errors.push(io_error(format!("cannot read {}: {e}", path.display()))),
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    (out, errors)
}

/// Reads every file of `patterns` and compiles them after the `inline` rules. A rule whose
/// `pool` is not one `pool_defined` accepts is an error like any other, so that `rampart
/// check` and a hot reload refuse the same rules. `ignore_path_params`: the project's
/// setting ([`PathMatching`]).
///
/// Runs on a thread of its own (`crate::alloc::on_own_thread`), so that the set's memory comes
/// back when it is dropped, and the memory the file texts and specs took (tens of MiB at
/// 100 000 rules) right away.
pub fn compile_project(
    inline: &[RuleSpec],
    patterns: &[String],
    pool_defined: &(dyn Fn(&str) -> bool + Sync),
    ignore_path_params: bool,
) -> Result<ProjectRules, LoadErrors> {
    crate::alloc::on_own_thread(|| {
        compile_files(inline, patterns, pool_defined, ignore_path_params)
    })
}

fn compile_files(
    inline: &[RuleSpec],
    patterns: &[String],
    pool_defined: &(dyn Fn(&str) -> bool + Sync),
    ignore_path_params: bool,
) -> Result<ProjectRules, LoadErrors> {
    let (stamps, missing) = collect(patterns);
    let mut errors = LoadErrors {
        inline: Vec::new(),
        files: missing,
    };
    let mut specs: Vec<RuleSpec> = inline.to_vec();
    let mut origins: Vec<Origin> = (0..inline.len()).map(Origin::Inline).collect();
    // YAML texts, kept to locate rule errors: the position index costs a second parse of
    // the file, so it is built only when a rule in it fails to compile.
    let mut texts: Vec<Option<String>> = Vec::new();
    let csv_paths: Vec<&Path> = stamps
        .iter()
        .map(|s| s.path.as_path())
        .filter(|p| is_csv(p))
        .collect();
    let mut csv_names = super::csv_names::csv_rule_names(&csv_paths).into_iter();
    for (file, stamp) in stamps.iter().enumerate() {
        let text = match std::fs::read_to_string(&stamp.path) {
            // A byte-order mark (spreadsheets write one) is not part of the first line.
            Ok(mut t) if t.starts_with('\u{feff}') => {
                t.drain(..'\u{feff}'.len_utf8());
                t
            }
            Ok(t) => t,
            Err(e) => {
                errors.files.push(FileError {
                    path: stamp.path.clone(),
                    line: 0,
                    column: 0,
                    key: String::new(),
                    message: format!("cannot read: {e}"),
                });
                texts.push(None);
                continue;
            }
        };
        // Rules go straight into `specs`, sized once: 100 000 of them take ~60 MiB, and a
        // second list, or the copy a doubling makes, would hold that twice during the load.
        if is_csv(&stamp.path) {
            texts.push(None);
            specs.reserve(text.lines().count());
            let name = csv_names.next().unwrap_or_default();
            let csv_errors = parse_csv(&stamp.path, &name, &text, |line, spec| {
                origins.push(Origin::Csv { file, line });
                specs.push(spec);
            });
            errors.files.extend(csv_errors);
        } else {
            let read = match super::yaml_batches::read_in_batches(&text) {
                Some(rules) => Ok(rules),
                None => serde_yaml::from_str::<Vec<RuleSpec>>(&text),
            };
            match read {
                Ok(rules) => {
                    origins.extend((0..rules.len()).map(|item| Origin::Yaml { file, item }));
                    if specs.is_empty() {
                        specs = rules;
                    } else {
                        specs.extend(rules);
                    }
                }
                Err(e) => errors.files.extend(yaml_errors(&stamp.path, &text, e)),
            }
            texts.push(Some(text));
        }
    }
    errors
        .files
        .extend(repeated_csv_sources(&specs, &origins, &stamps));
    // Every kind of mistake in one report: the file errors above, each rule's own, and the
    // pools rules route to (checked on the specs, so that a rule that does not compile does
    // not hide them).
    let mut rule_errors: Vec<RuleError> = specs
        .iter()
        .enumerate()
        .filter_map(|(index, spec)| {
            let pool = spec.pool.as_deref().filter(|p| !p.trim().is_empty())?;
            (!pool_defined(pool)).then(|| RuleError {
                index,
                other: None,
                field: "pool".to_string(),
                message: format!(
                    "a rule routes to pool `{pool}`, which is not defined under `pools:`"
                ),
            })
        })
        .collect();
    let paths = PathMatching {
        ignore_params: ignore_path_params,
    };
    match RuleSet::compile_with(&specs, paths) {
        Ok(set) if rule_errors.is_empty() && errors.files.is_empty() => {
            return Ok(ProjectRules { set, stamps });
        }
        Ok(_) => {}
        Err(compile_errors) => rule_errors.extend(compile_errors),
    }
    let mut indexes: Vec<Option<PositionIndex>> = texts.iter().map(|_| None).collect();
    for mut e in rule_errors {
        // "also the id of rule 8" counts across inline rules and files: name the place.
        if let (Some(other), Some(origin)) = (e.other, origins.get(e.index)) {
            if !matches!(origin, Origin::Inline(_)) {
                let place = origins
                    .get(other)
                    .map_or_else(|| format!("rule {other}"), |o| o.place(&stamps));
                let id = &specs[e.index].id;
                e.message = format!(
                    "`{id}` is also the id of {place}: ids must be unique within a project, rename one"
                );
            }
        }
        match origins.get(e.index) {
            Some(Origin::Inline(i)) => errors.inline.push(RuleError { index: *i, ..e }),
            Some(Origin::Yaml { file, item }) => {
                let key = format!("[{item}].{}", e.field);
                let index = texts[*file]
                    .as_deref()
                    .map(|text| &*indexes[*file].get_or_insert_with(|| PositionIndex::build(text)));
                let (line, column) = index.map_or((0, 0), |ix| ix.locate(&key));
                errors.files.push(FileError {
                    path: stamps[*file].path.clone(),
                    line,
                    column,
                    key,
                    message: e.message,
                });
            }
            Some(Origin::Csv { file, line }) => {
                errors.files.push(FileError {
                    path: stamps[*file].path.clone(),
                    line: *line,
                    column: 1,
                    key: String::new(),
                    message: format!("{}: {}", e.field, e.message),
                });
            }
            None => errors.inline.push(e),
        }
    }
    Err(errors)
}

/// Every key and type error of a YAML rules file that did not deserialize, rule by rule, each
/// located by its key path (`[3].match.pth`); `first` is serde's error for the whole file.
fn yaml_errors(path: &Path, text: &str, first: serde_yaml::Error) -> Vec<FileError> {
    let mut found = Vec::new();
    if let Ok(serde_yaml::Value::Sequence(items)) = serde_yaml::from_str(text) {
        for (i, item) in items.into_iter().enumerate() {
            errors_of::<RuleSpec>(&format!("[{i}]"), item, &mut found);
        }
    }
    // Not a list, or no rule failed on its own: the file's error is the one to report (an
    // empty list here would load the project without this file's rules).
    let one = "a rules file is one YAML list of rules";
    if let Some((line, message)) = second_document(text, &first, one) {
        return vec![FileError {
            path: path.to_path_buf(),
            line,
            column: 1,
            key: String::new(),
            message,
        }];
    }
    if found.is_empty() {
        let (line, column) = first.location().map_or((0, 0), |l| (l.line(), l.column()));
        let message = describe("", &first);
        return vec![FileError {
            path: path.to_path_buf(),
            line,
            column,
            key: String::new(),
            message: format!("{message} (a rules file is a YAML list of rules)"),
        }];
    }
    let index = PositionIndex::build(text);
    found
        .into_iter()
        .map(|(key, error)| {
            let (line, column) = index.locate(&key);
            FileError {
                path: path.to_path_buf(),
                line,
                column,
                message: describe(&key, &error),
                key,
            }
        })
        .collect()
}

/// A CSV source redirected twice (in one file or two): only the first line can ever apply,
/// so the second is a mistake to fix, not to load silently.
fn repeated_csv_sources(
    specs: &[RuleSpec],
    origins: &[Origin],
    stamps: &[FileStamp],
) -> Vec<FileError> {
    let mut first: HashMap<(Option<&str>, &str), &Origin> = HashMap::new();
    let mut errors = Vec::new();
    for (spec, origin) in specs.iter().zip(origins) {
        let Origin::Csv { file, line } = *origin else {
            continue;
        };
        let source = (
            spec.matcher.host.as_deref(),
            spec.matcher.path.as_deref().unwrap_or_default(),
        );
        if let Some(earlier) = first.get(&source) {
            let place = match earlier {
                Origin::Csv { file: f, line: l } if *f == file => format!("line {l}"),
                other => other.place(stamps),
            };
            errors.push(FileError {
                path: stamps[file].path.clone(),
                line,
                column: 1,
                key: String::new(),
                message: format!(
                    "source `{}{}` is already redirected on {place}: only the first applies, remove one",
                    source.0.map(|h| format!("//{h}")).unwrap_or_default(),
                    source.1
                ),
            });
        } else {
            first.insert(source, origin);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(dir.path(), "bad.csv", "/a,/b\n/c\n/d,/e,abc\n/f,/g,200\n");
        let e = compile_project(&[], &[csv], &|_| true, false).unwrap_err();
        let lines: Vec<usize> = e.files.iter().map(|f| f.line).collect();
        // Lines that do not read (2, 3) do not hide the rule that does not compile (4).
        assert_eq!(lines, [2, 3, 4], "{e}");
        let yaml = write(
            dir.path(),
            "bad.yaml",
            "- id: ok\n  match: { path: /a }\n- id: broken\n  match:\n    path_regex: '(['\n",
        );
        let e = compile_project(&[], &[yaml], &|_| true, false).unwrap_err();
        assert_eq!(
            (e.files[0].line, e.files[0].key.as_str()),
            (5, "[1].match.path_regex"),
            "{e}"
        );
        let csv_status = write(dir.path(), "status.csv", "/f,/g,200\n");
        let e = compile_project(&[], &[csv_status], &|_| true, false).unwrap_err();
        assert_eq!(e.files[0].line, 1);
        assert!(e.files[0].message.contains("redirect.status"), "{e}");
    }

    #[test]
    fn a_rule_routing_to_an_undefined_pool_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = write(
            dir.path(),
            "pools.yaml",
            "- { id: fine, pool: app }\n- id: lost\n  pool: ghost\n",
        );
        let e = compile_project(&[], &[yaml], &|p| p == "app", false).unwrap_err();
        assert_eq!(
            (e.files[0].line, e.files[0].key.as_str()),
            (3, "[1].pool"),
            "{e}"
        );
        assert!(e.files[0].message.contains("pool `ghost`"), "{e}");
    }

    #[test]
    fn globs_combine_files_in_order_after_inline_rules() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.csv", "/x,/from-b\n");
        write(
            dir.path(),
            "a.yaml",
            "- { id: a1, match: { path: /y }, redirect: { to: /from-a } }\n",
        );
        let pattern = format!("{}/*", dir.path().display());
        let r = compile_project(&[], &[pattern], &|_| true, false).unwrap();
        assert_eq!(r.set.len(), 2);
        assert_eq!(r.stamps.len(), 2);
        assert!(r.stamps[0].path.ends_with("a.yaml"));
        let missing = format!("{}/none.csv", dir.path().display());
        assert!(
            compile_project(&[], &[missing], &|_| true, false).is_err(),
            "a named file must exist"
        );
        assert!(
            compile_project(
                &[],
                &[format!("{}/*.none", dir.path().display())],
                &|_| true,
                false
            )
            .is_ok(),
            "an empty glob is fine"
        );
    }
    #[test]
    fn csv_files_of_one_name_in_two_folders_name_their_rules_apart() {
        let dir = tempfile::tempdir().unwrap();
        for team in ["blog", "shop"] {
            std::fs::create_dir(dir.path().join(team)).unwrap();
            write(
                &dir.path().join(team),
                "redirects.csv",
                &format!("/{team}/old,/{team}/new\n"),
            );
        }
        write(dir.path(), "extra.csv", "/x,/y\n");
        let patterns = [
            format!("{}/*/redirects.csv", dir.path().display()),
            format!("{}/extra.csv", dir.path().display()),
        ];
        let r = compile_project(&[], &patterns, &|_| true, false).unwrap();
        let ids: Vec<&str> = r.set.rule_ids().collect();
        assert_eq!(
            ids,
            [
                "blog/redirects.csv:1",
                "extra.csv:1",
                "shop/redirects.csv:1"
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_repeats_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let bom = write(
            dir.path(),
            "bom.csv",
            "\u{feff}source,target,status\n/a,/b,302\n",
        );
        let r = compile_project(&[], &[bom], &|_| true, false).unwrap();
        assert_eq!(r.set.len(), 1, "the header line is recognised");
        let one = write(dir.path(), "one.csv", "/a,/b\n/c,/d\n/a,/e\n");
        let two = write(dir.path(), "two.csv", "//h.test/c,/x\n/c,/f\n");
        let e = compile_project(&[], &[one, two], &|_| true, false).unwrap_err();
        let found: Vec<(String, usize, &str)> = e
            .files
            .iter()
            .map(|f| {
                let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, f.line, f.message.as_str())
            })
            .collect();
        assert_eq!(found.len(), 2, "{e}");
        assert_eq!((found[0].0.as_str(), found[0].1), ("one.csv", 3));
        assert!(
            found[0].2.contains("`/a` is already redirected on line 1"),
            "{e}"
        );
        assert_eq!((found[1].0.as_str(), found[1].1), ("two.csv", 2));
        assert!(found[1].2.contains("one.csv:2"), "{e}");
        let e = compile_project(&[], &[dir.path().display().to_string()], &|_| true, false)
            .unwrap_err();
        assert!(e.files[0].message.contains("is a directory"), "{e}");
    }
    #[test]
    fn a_repeated_id_names_where_the_first_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.yaml", "- { id: x, match: { path: /a } }\n");
        let b = write(
            dir.path(),
            "b.yaml",
            "- { id: y, match: { path: /b } }\n- { id: x, match: { path: /c } }\n",
        );
        let inline = crate::rules::testutil::specs("[{id: y, match: {path: /d}}]");
        let e = compile_project(&inline, &[a, b], &|_| true, false).unwrap_err();
        let messages: Vec<&str> = e.files.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{e}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`y` is also the id of inline rule 0")),
            "{e}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`x` is also the id of rule [0] of") && m.contains("a.yaml")),
            "{e}"
        );
    }
}
