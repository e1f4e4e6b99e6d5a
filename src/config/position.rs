//! Maps key paths (`projects[0].rules[1].match`) to their line and column in the YAML text,
//! so that errors found after deserializing still point at the right place.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Key path → (line, column), both 1-based.
#[derive(Debug, Default)]
pub struct PositionIndex {
    positions: HashMap<String, (usize, usize)>,
    duplicates: Vec<Duplicate>,
}

/// A key given twice in one mapping.
#[derive(Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub path: String,
    /// (line, column) of the repeat, and of the first.
    pub at: (usize, usize),
    pub first: (usize, usize),
}

impl PositionIndex {
    /// Indexes `text`; a text that does not parse gives an empty index (the parse error is
    /// reported by the deserializer with its own position).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return PositionIndex::default();
        }
        PositionIndex {
            positions: builder.positions,
            duplicates: builder.duplicates,
        }
    }

    /// Keys given twice in one mapping (YAML parsers keep the last silently): key path,
    /// position of the repeat, position of the first.
    pub fn duplicates(&self) -> &[Duplicate] {
        &self.duplicates
    }

    /// The innermost key path at or before (`line`, `column`): the key whose value holds
    /// that place, for an error found in the text itself (an unset `${VAR}`).
    pub fn key_at(&self, line: usize, column: usize) -> Option<&str> {
        self.positions
            .iter()
            .filter(|(_, &at)| at <= (line, column))
            .max_by_key(|(path, &at)| (at, path.len()))
            .map(|(path, _)| path.as_str())
    }

    /// Position of `path`, or of its closest indexed ancestor.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

enum Frame {
    /// In a mapping: `Some(key)` after a key was read, `None` when the next scalar is a key.
    Map {
        path: String,
        key: Option<String>,
        /// Keys read so far, with their positions.
        seen: HashMap<String, (usize, usize)>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, (usize, usize)>,
    duplicates: Vec<Duplicate>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// The path of the value that starts now (and advances the parent frame), or `None` when
    /// the event is a mapping key.
    fn value_path(&mut self, mark: Marker, scalar: Option<&str>) -> Option<String> {
        let at = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key, seen }) => match key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    let k = scalar.unwrap_or_default().to_string();
                    match seen.get(&k) {
                        Some(first) => self.duplicates.push(Duplicate {
                            path: join(path, &k),
                            at,
                            first: *first,
                        }),
                        None => {
                            seen.insert(k.clone(), at);
                        }
                    }
                    self.positions.entry(join(path, &k)).or_insert(at);
                    *key = Some(k);
                    None
                }
            },
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                self.positions.entry(p.clone()).or_insert(at);
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                self.value_path(mark, Some(&value));
            }
            Event::Alias(_) => {
                self.value_path(mark, None);
            }
            Event::MappingStart(..) => {
                if let Some(path) = self.value_path(mark, None) {
                    self.stack.push(Frame::Map {
                        path,
                        key: None,
                        seen: HashMap::new(),
                    });
                }
            }
            Event::SequenceStart(..) => {
                if let Some(path) = self.value_path(mark, None) {
                    self.stack.push(Frame::Seq { path, next: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys_and_items() {
        let text = "a: 1\npools:\n  app:\n    backends:\n      - 1.2.3.4:80\n      - { address: x, weight: 2 }\n";
        let idx = PositionIndex::build(text);
        assert_eq!(idx.locate("a"), (1, 1));
        assert_eq!(idx.locate("pools.app"), (3, 3));
        assert_eq!(idx.locate("pools.app.backends[0]"), (5, 9));
        assert_eq!(idx.locate("pools.app.backends[1].weight"), (6, 23));
        // unknown leaf falls back to the nearest ancestor
        assert_eq!(idx.locate("pools.app.selection"), (3, 3));
        assert!(idx.duplicates().is_empty());
    }

    #[test]
    fn finds_keys_given_twice_in_one_mapping() {
        let text = "listeners:\n  http: {address: a}\n  http: {address: b}\nx: {k: 1, k: 2}\nl: [{k: 1}, {k: 2}]\n";
        let idx = PositionIndex::build(text);
        assert_eq!(
            idx.duplicates(),
            [
                Duplicate {
                    path: "listeners.http".to_string(),
                    at: (3, 3),
                    first: (2, 3)
                },
                Duplicate {
                    path: "x.k".to_string(),
                    at: (4, 11),
                    first: (4, 5)
                }
            ]
        );
    }
}
