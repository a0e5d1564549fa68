//! Paths into a tree: `Line[0].Amount`, `stops[*].city`, `$root.Id`,
//! `["Time Series (Daily)"]`. Source paths read (with wildcards); target
//! paths write (creating objects and arrays).

use serde_json::{Map, Value};
use std::borrow::Cow;

/// Most segments in one path.
pub const MAX_PATH_SEGMENTS: usize = 64;
/// Largest array index a target path may name (so `a[999999999]` cannot
/// allocate a huge array of nulls).
pub const MAX_TARGET_INDEX: usize = 10_000;

/// Where a source path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// The current item (`$`, or a bare name): the document at the top
    /// level, the array element inside `each`.
    Item,
    /// The whole input document (`$root`), also inside `each`.
    Root,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(i64),
    Wildcard,
}

/// A compiled source path.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub anchor: Anchor,
    pub segs: Vec<Seg>,
    pub text: String,
    pub has_wildcard: bool,
}

/// Which scope a path is evaluated in.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub root: &'a Value,
    pub item: &'a Value,
}

fn parse_bracket(chars: &[char], i: &mut usize) -> Result<Seg, String> {
    // chars[*i] == '['
    *i += 1;
    let start = *i;
    let seg = match chars.get(*i) {
        Some('*') => {
            *i += 1;
            Seg::Wildcard
        }
        Some(&q) if q == '"' || q == '\'' => {
            *i += 1;
            let mut key = String::new();
            loop {
                match chars.get(*i) {
                    None => return Err(format!("unclosed quote at column {}", start + 1)),
                    Some('\\') => {
                        *i += 1;
                        let c = chars.get(*i).ok_or("dangling escape")?;
                        key.push(*c);
                    }
                    Some(&c) if c == q => break,
                    Some(&c) => key.push(c),
                }
                *i += 1;
            }
            *i += 1;
            Seg::Key(key)
        }
        _ => {
            while chars
                .get(*i)
                .is_some_and(|c| c.is_ascii_digit() || *c == '-')
            {
                *i += 1;
            }
            let text: String = chars[start..*i].iter().collect();
            let n: i64 = text.parse().map_err(|_| {
                format!("expected an index, `*` or a quoted key after `[` at column {start}")
            })?;
            Seg::Index(n)
        }
    };
    if chars.get(*i) != Some(&']') {
        return Err(format!("expected `]` at column {}", *i + 1));
    }
    *i += 1;
    Ok(seg)
}

fn parse_key(chars: &[char], i: &mut usize) -> Result<Seg, String> {
    let start = *i;
    while chars.get(*i).is_some_and(|c| *c != '.' && *c != '[') {
        *i += 1;
    }
    if *i == start {
        return Err(format!("empty name at column {}", start + 1));
    }
    let key: String = chars[start..*i].iter().collect();
    Ok(if key == "*" {
        Seg::Wildcard
    } else {
        Seg::Key(key)
    })
}

/// Splits `text` into an anchor and segments.
fn parse_segments(text: &str) -> Result<(Anchor, Vec<Seg>), String> {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut i = 0;
    let mut anchor = Anchor::Item;
    let starts_with = |p: &str| chars.iter().take(p.len()).copied().eq(p.chars());
    let mut need_sep = false;
    if starts_with("$root")
        && !chars
            .get(5)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        anchor = Anchor::Root;
        i = 5;
        need_sep = true;
    } else if starts_with("$")
        && !chars
            .get(1)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        i = 1;
        need_sep = true;
    }
    let mut segs = Vec::new();
    while i < chars.len() {
        let seg = match chars.get(i) {
            Some('[') => parse_bracket(&chars, &mut i)?,
            Some('.') => {
                i += 1;
                parse_key(&chars, &mut i)?
            }
            _ if !need_sep => parse_key(&chars, &mut i)?,
            _ => return Err(format!("expected `.` or `[` at column {}", i + 1)),
        };
        need_sep = true;
        segs.push(seg);
        if segs.len() > MAX_PATH_SEGMENTS {
            return Err(format!("more than {MAX_PATH_SEGMENTS} segments"));
        }
    }
    Ok((anchor, segs))
}

impl Path {
    /// Parses a source path.
    pub fn parse(text: &str) -> Result<Path, String> {
        if text.trim().is_empty() {
            return Err("empty path".into());
        }
        let (anchor, segs) = parse_segments(text)?;
        let has_wildcard = segs.contains(&Seg::Wildcard);
        Ok(Path {
            anchor,
            segs,
            text: text.trim().to_string(),
            has_wildcard,
        })
    }

    /// The value at this path, `None` when absent. A wildcard path gives an
    /// array of every match (flattened), or `None` when what comes before
    /// the first wildcard is absent.
    pub fn get<'a>(&self, scope: Scope<'a>) -> Option<Cow<'a, Value>> {
        let start = match self.anchor {
            Anchor::Item => scope.item,
            Anchor::Root => scope.root,
        };
        if !self.has_wildcard {
            return step_all(start, &self.segs).map(Cow::Borrowed);
        }
        let first_wild = self.segs.iter().position(|s| *s == Seg::Wildcard)?;
        let prefix = self.segs.get(..first_wild)?;
        let base = step_all(start, prefix)?;
        let mut out = Vec::new();
        collect(base, self.segs.get(first_wild..).unwrap_or(&[]), &mut out);
        Some(Cow::Owned(Value::Array(out.into_iter().cloned().collect())))
    }
}

fn step<'a>(v: &'a Value, seg: &Seg) -> Option<&'a Value> {
    match (seg, v) {
        (Seg::Key(k), Value::Object(m)) => m.get(k),
        (Seg::Index(i), Value::Array(a)) => {
            let idx = if *i < 0 {
                a.len()
                    .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
            } else {
                usize::try_from(*i).ok()?
            };
            a.get(idx)
        }
        _ => None,
    }
}

fn step_all<'a>(mut v: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    for s in segs {
        v = step(v, s)?;
    }
    Some(v)
}

fn collect<'a>(v: &'a Value, segs: &[Seg], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push(v);
        return;
    };
    if *first == Seg::Wildcard {
        match v {
            Value::Array(a) => a.iter().for_each(|e| collect(e, rest, out)),
            Value::Object(m) => m.values().for_each(|e| collect(e, rest, out)),
            _ => {}
        }
    } else if let Some(next) = step(v, first) {
        collect(next, rest, out);
    }
}

/// A target segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TSeg {
    Key(String),
    Index(usize),
    /// `[]`: append a new element.
    Append,
}

/// A compiled target path; no segments means the whole output.
#[derive(Debug, Clone)]
pub(crate) struct TargetPath {
    pub segs: Vec<TSeg>,
    pub text: String,
}

impl TargetPath {
    /// Parses a target path (`$` for the whole output).
    pub fn parse(text: &str) -> Result<TargetPath, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty target path".into());
        }
        // `[]` is not a source segment: read it here and reuse the rest.
        let mut segs = Vec::new();
        for (n, part) in t.split("[]").enumerate() {
            if n > 0 {
                segs.push(TSeg::Append);
            }
            if part.is_empty() {
                continue;
            }
            let part = if n > 0 && !part.starts_with(['.', '[']) {
                return Err("expected `.` or `[` after `[]`".into());
            } else {
                part
            };
            let (anchor, ss) = parse_segments(part)?;
            if anchor == Anchor::Root {
                return Err("`$root` cannot be written to; use `$` for the whole output".into());
            }
            for s in ss {
                segs.push(match s {
                    Seg::Key(k) => TSeg::Key(k),
                    Seg::Index(i) => match usize::try_from(i) {
                        Ok(i) if i <= MAX_TARGET_INDEX => TSeg::Index(i),
                        _ => return Err(format!("index {i} out of range 0..={MAX_TARGET_INDEX}")),
                    },
                    Seg::Wildcard => return Err("a target path cannot have a wildcard".into()),
                });
            }
        }
        if segs.len() > MAX_PATH_SEGMENTS {
            return Err(format!("more than {MAX_PATH_SEGMENTS} segments"));
        }
        Ok(TargetPath {
            segs,
            text: t.to_string(),
        })
    }

    /// Writes `value` into `out`, creating objects and arrays on the way.
    pub fn write(&self, out: &mut Value, value: Value) -> Result<(), String> {
        let mut cur = out;
        let Some((last, init)) = self.segs.split_last() else {
            *cur = value;
            return Ok(());
        };
        // the last key is one insert (no lookup, then a second write)
        if let (TSeg::Key(k), true) = (last, init.is_empty()) {
            if cur.is_null() {
                *cur = Value::Object(Map::new());
            }
            if let Value::Object(m) = cur {
                m.insert(k.clone(), value);
                return Ok(());
            }
        }
        for seg in &self.segs {
            cur = match seg {
                TSeg::Key(k) => {
                    if cur.is_null() {
                        *cur = Value::Object(Map::new());
                    }
                    match cur {
                        Value::Object(m) => {
                            if !m.contains_key(k) {
                                m.insert(k.clone(), Value::Null);
                            }
                            m.get_mut(k).ok_or("cannot create the key")?
                        }
                        _ => {
                            return Err(format!(
                                "cannot set `{k}` on a non-object ({})",
                                self.text
                            ));
                        }
                    }
                }
                TSeg::Index(_) | TSeg::Append if cur.is_null() => {
                    *cur = Value::Array(Vec::new());
                    index_mut(cur, seg)?
                }
                TSeg::Index(_) | TSeg::Append => index_mut(cur, seg)?,
            };
        }
        *cur = value;
        Ok(())
    }
}

fn index_mut<'v>(cur: &'v mut Value, seg: &TSeg) -> Result<&'v mut Value, String> {
    let Value::Array(a) = cur else {
        return Err("cannot index a non-array".into());
    };
    let i = match seg {
        TSeg::Index(i) => *i,
        _ => a.len(),
    };
    if a.len() <= i {
        a.resize(i + 1, Value::Null);
    }
    a.get_mut(i).ok_or_else(|| "index out of range".to_string())
}
