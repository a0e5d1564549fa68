//! `transform_template`: a JSON field mapping applied to an inbound payload
//! before it is routed (the transformation engine takes over later).
//!
//! A template is an object whose values say where each output field comes
//! from: a string starting with `$` is a path into the payload (`$`,
//! `$.shipment.id`, `$.stops[0].city`; a missing path gives `null`),
//! `{"const": v}` is the literal `v`, a nested object is a nested mapping,
//! and any other value is taken literally.

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("{path:?}: a path starts with $"))?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    key.push(n);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(format!("{path:?}: empty field name"));
                }
                steps.push(Step::Key(key));
            }
            '[' => {
                let mut num = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    num.push(n);
                }
                let i = num
                    .parse()
                    .map_err(|_| format!("{path:?}: [{num}] is not an index"))?;
                steps.push(Step::Index(i));
            }
            other => return Err(format!("{path:?}: unexpected {other:?}")),
        }
    }
    Ok(steps)
}

fn lookup<'a>(input: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(input, |v, s| match s {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(*i),
    })
}

/// Checks a template: an object of mappings with well-formed paths.
pub fn validate(template: &Value) -> Result<(), String> {
    let Value::Object(map) = template else {
        return Err("must be an object mapping output fields to paths like \"$.data.id\"".into());
    };
    for (k, v) in map {
        match v {
            Value::String(s) if s.starts_with('$') => {
                parse_path(s).map_err(|e| format!("{k}: {e}"))?;
            }
            Value::Object(o) if o.contains_key("const") => {}
            Value::Object(_) => validate(v).map_err(|e| format!("{k}.{e}"))?,
            _ => {}
        }
    }
    Ok(())
}

/// Applies `template` to `input`.
pub fn apply(template: &Value, input: &Value) -> Result<Value, String> {
    let Value::Object(map) = template else {
        return Err("template is not an object".into());
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let value = match v {
            Value::String(s) if s.starts_with('$') => lookup(input, &parse_path(s)?)
                .cloned()
                .unwrap_or(Value::Null),
            Value::Object(o) if o.contains_key("const") => o["const"].clone(),
            Value::Object(_) => apply(v, input)?,
            other => other.clone(),
        };
        out.insert(k.clone(), value);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn maps_paths_constants_and_nested_objects() {
        let input =
            json!({"shipment": {"id": "L-1", "stops": [{"city": "Austin"}]}, "event": "DELIVERED"});
        let t = json!({
            "load_id": "$.shipment.id",
            "status": "$.event",
            "first_city": "$.shipment.stops[0].city",
            "missing": "$.nope.deeper",
            "source": {"const": "dat"},
            "meta": {"whole_id": "$.shipment.id"},
            "version": 2,
        });
        validate(&t).unwrap();
        assert_eq!(
            apply(&t, &input).unwrap(),
            json!({"load_id": "L-1", "status": "DELIVERED", "first_city": "Austin", "missing": null,
                   "source": "dat", "meta": {"whole_id": "L-1"}, "version": 2})
        );
        assert_eq!(apply(&json!({"all": "$"}), &input).unwrap()["all"], input);
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(validate(&json!([1])).is_err());
        assert!(validate(&json!({"a": "$..x"})).is_err());
        assert!(validate(&json!({"a": "$.x[y]"})).is_err());
        assert!(validate(&json!({"a": {"b": "$x"}})).is_err());
    }

    proptest! {
        #[test]
        fn a_field_maps_to_itself(key in "[a-z]{1,10}", value in any::<i64>()) {
            let input = json!({ key.clone(): value });
            let t = json!({"out": format!("$.{key}")});
            prop_assert_eq!(apply(&t, &input).unwrap(), json!({"out": value}));
        }
        #[test]
        fn never_panics(path in "\\PC{0,30}") {
            let t = json!({"x": format!("${path}")});
            let _ = validate(&t);
            let _ = apply(&t, &json!({"a": [1, {"b": 2}]}));
        }
    }
}
