//! The separators of an interchange, read from its ISA or given in a tree.

use serde_json::{Map, Value};

/// The delimiters of one interchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seps {
    pub(crate) element: char,
    pub(crate) component: char,
    /// ISA11 where it is a separator (00402 and later), not a standards id.
    pub(crate) repetition: Option<char>,
    pub(crate) segment: char,
    /// What follows each segment terminator: nothing, `\n` or `\r\n`.
    pub(crate) suffix: &'static str,
}

impl Default for Seps {
    fn default() -> Self {
        Self {
            element: '*',
            component: '>',
            repetition: None,
            segment: '~',
            suffix: "\n",
        }
    }
}

/// The suffixes allowed after a segment terminator.
const SUFFIXES: [&str; 4] = ["", "\n", "\r\n", "\r"];

impl Seps {
    /// Why these separators cannot delimit an interchange, if they cannot:
    /// they must differ from each other, from the suffix and from data
    /// (letters, digits, space).
    pub(crate) fn problem(&self) -> Option<String> {
        let mut all = vec![
            ("element", self.element),
            ("component", self.component),
            ("segment", self.segment),
        ];
        if let Some(r) = self.repetition {
            all.push(("repetition", r));
        }
        for (i, (name, c)) in all.iter().enumerate() {
            if c.is_alphanumeric() || *c == ' ' {
                return Some(format!(
                    "the {name} separator {c:?} is a letter, digit or space; it would be read as data"
                ));
            }
            if self.suffix.contains(*c) {
                return Some(format!(
                    "the {name} separator {c:?} is also in the suffix after the segment terminator"
                ));
            }
            if let Some((other, _)) = all.iter().skip(i + 1).find(|(_, d)| d == c) {
                return Some(format!(
                    "the {name} and {other} separators are both {c:?}; they must differ"
                ));
            }
        }
        None
    }

    /// Whether `c` cannot appear in an element's data.
    pub(crate) fn is_delimiter(&self, c: char) -> bool {
        c == self.element || c == self.segment || c == self.component || Some(c) == self.repetition
    }

    /// The suffix as it is spelled in `text` right at its start.
    pub(crate) fn suffix_at(text: &str) -> &'static str {
        if text.starts_with("\r\n") {
            "\r\n"
        } else if text.starts_with('\n') {
            "\n"
        } else if text.starts_with('\r') {
            "\r"
        } else {
            ""
        }
    }

    /// The `separators` object of a parsed tree.
    pub(crate) fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("element".into(), Value::String(self.element.to_string()));
        m.insert(
            "component".into(),
            Value::String(self.component.to_string()),
        );
        m.insert(
            "repetition".into(),
            self.repetition
                .map_or(Value::Null, |r| Value::String(r.to_string())),
        );
        m.insert("segment".into(), Value::String(self.segment.to_string()));
        m.insert("suffix".into(), Value::String(self.suffix.to_string()));
        Value::Object(m)
    }

    /// Separators from a tree's `separators` object (any part left out keeps
    /// its default: `*`, `>`, none, `~`, a newline).
    pub(crate) fn from_value(v: Option<&Value>) -> Result<Self, String> {
        let mut seps = Self::default();
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(seps);
        };
        let obj = v
            .as_object()
            .ok_or("separators: must be an object of single characters")?;
        for (key, value) in obj {
            match key.as_str() {
                "element" => seps.element = one_char(key, value)?,
                "component" => seps.component = one_char(key, value)?,
                "segment" => seps.segment = one_char(key, value)?,
                "repetition" if value.is_null() => seps.repetition = None,
                "repetition" => seps.repetition = Some(one_char(key, value)?),
                "suffix" => {
                    let s = value.as_str().unwrap_or("?");
                    seps.suffix = SUFFIXES.into_iter().find(|x| *x == s).ok_or_else(|| {
                        format!("separators.suffix: must be \"\", \"\\n\", \"\\r\\n\" or \"\\r\" (got {value})")
                    })?;
                }
                _ => {
                    return Err(format!(
                        "separators.{key}: unknown; the parts are element, component, repetition, segment and suffix"
                    ));
                }
            }
        }
        Ok(seps)
    }
}

fn one_char(key: &str, v: &Value) -> Result<char, String> {
    let s = v.as_str().unwrap_or("");
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("separators.{key}: must be one character (got {v})")),
    }
}
