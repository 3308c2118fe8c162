//! Values as Terraform sees them during `plan`, with the two kinds of
//! unknown that matter offline: a value the user or a data source gives at
//! plan (known then, not to us), and one known only after apply (a
//! resource's computed attribute). Type constraints (`type = object({…})`)
//! and Terraform's conversions to them, `optional(…, default)` included.

use std::collections::BTreeMap;

/// When an unknown value becomes known. `AfterApply` is the worse: a
/// `for_each` key or `count` that depends on it fails at plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unknown {
    AtPlan,
    AfterApply,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    /// A list or a tuple.
    List(Vec<Value>),
    /// A set (`toset`, or a `set(…)` type): never indexed.
    Set(Vec<Value>),
    /// A map or an object.
    Map(BTreeMap<String, Value>),
    Unknown(Unknown),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map or object",
            Value::Unknown(_) => "unknown value",
        }
    }

    /// The worst unknown anywhere inside.
    pub fn unknown_inside(&self) -> Option<Unknown> {
        match self {
            Value::Unknown(u) => Some(*u),
            Value::List(items) | Value::Set(items) => items.iter().filter_map(Value::unknown_inside).max(),
            Value::Map(m) => m.values().filter_map(Value::unknown_inside).max(),
            _ => None,
        }
    }

    /// The value as a template or string argument takes it.
    pub fn to_text(&self) -> Result<String, String> {
        match self {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(number_text(*n)),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Err("a null value cannot be used as a string".into()),
            other => Err(format!("a {} cannot be used as a string", other.kind())),
        }
    }

    /// A value written as JSON (inputs in tests); arrays are lists.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(m) => {
                Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown(_) => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => serde_json::Value::from(*n as i64),
            Value::Number(n) => serde_json::Value::from(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) | Value::Set(items) => items.iter().map(Value::to_json).collect(),
            Value::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
        }
    }

    /// A short rendering for messages.
    pub fn brief(&self) -> String {
        match self {
            Value::Unknown(Unknown::AtPlan) => "(known at plan)".into(),
            Value::Unknown(Unknown::AfterApply) => "(known after apply)".into(),
            other => {
                let text = other.to_json().to_string();
                if text.len() > 80 {
                    format!("{}…", &text[..text.char_indices().nth(77).map_or(text.len(), |(i, _)| i)])
                } else {
                    text
                }
            }
        }
    }
}

/// Terraform prints whole numbers without a fraction.
pub fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// A type constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Any,
    String,
    Number,
    Bool,
    List(Box<Ty>),
    Set(Box<Ty>),
    Map(Box<Ty>),
    Object(BTreeMap<String, Attr>),
    Tuple(Vec<Ty>),
}

/// An object type's attribute: `optional(ty, default)` or required.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub ty: Ty,
    pub optional: bool,
    pub default: Option<Value>,
}

/// `value` converted to `ty` as Terraform converts a module input, or why
/// it cannot be. Stricter than Terraform in one place: an attribute an
/// object type does not declare is an error here (Terraform drops it
/// silently, so a misspelt optional attribute would go unnoticed).
pub fn convert(value: Value, ty: &Ty, at: &str) -> Result<Value, String> {
    let wrong = |v: &Value, want: &str| Err(format!("{at}: {want} required, got a {}", v.kind()));
    match (ty, value) {
        (_, v @ (Value::Null | Value::Unknown(_))) => Ok(v),
        (Ty::Any, v) => Ok(v),
        (Ty::String, v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => Ok(Value::String(v.to_text()?)),
        (Ty::String, v) => wrong(&v, "a string"),
        (Ty::Number, Value::Number(n)) => Ok(Value::Number(n)),
        (Ty::Number, Value::String(s)) => {
            s.trim().parse().map(Value::Number).map_err(|_| format!("{at}: a number required, got {s:?}"))
        }
        (Ty::Number, v) => wrong(&v, "a number"),
        (Ty::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (Ty::Bool, Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
        (Ty::Bool, v) => wrong(&v, "a bool"),
        (Ty::List(t), Value::List(items) | Value::Set(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| convert(v, t, &format!("{at}[{i}]")))
            .collect::<Result<_, _>>()
            .map(Value::List),
        (Ty::Tuple(_), v @ Value::List(_)) => Ok(v),
        (Ty::List(_) | Ty::Tuple(_), v) => wrong(&v, "a list"),
        (Ty::Set(t), Value::List(items) | Value::Set(items)) => {
            let items: Vec<Value> = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| convert(v, t, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?;
            Ok(set_of(items))
        }
        (Ty::Set(_), v) => wrong(&v, "a set"),
        (Ty::Map(t), Value::Map(m)) => m
            .into_iter()
            .map(|(k, v)| convert(v, t, &format!("{at}[{k:?}]")).map(|v| (k, v)))
            .collect::<Result<_, _>>()
            .map(Value::Map),
        (Ty::Map(_), v) => wrong(&v, "a map"),
        (Ty::Object(attrs), Value::Map(mut m)) => {
            let mut out = BTreeMap::new();
            for (name, attr) in attrs {
                let v = match m.remove(name) {
                    Some(v) => convert(v, &attr.ty, &format!("{at}.{name}"))?,
                    None if attr.optional => attr.default.clone().unwrap_or(Value::Null),
                    None => return Err(format!("{at}: attribute {name:?} is required")),
                };
                out.insert(name.clone(), v);
            }
            if let Some(extra) = m.keys().next() {
                let declared: Vec<&str> = attrs.keys().map(String::as_str).collect();
                return Err(format!("{at}: no attribute {extra:?} in the type (it has {})", declared.join(", ")));
            }
            Ok(Value::Map(out))
        }
        (Ty::Object(_), v) => wrong(&v, "an object"),
    }
}

/// A collection's (key, value) pairs as `for`, `for_each` and `dynamic`
/// iterate them: a list by index, a set by its values, a map by key; any
/// other value is given back as the error.
pub fn elements(collection: Value) -> Result<Vec<(Value, Value)>, Value> {
    match collection {
        Value::List(items) => Ok(items.into_iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v)).collect()),
        Value::Set(items) => Ok(items.into_iter().map(|v| (v.clone(), v)).collect()),
        Value::Map(m) => Ok(m.into_iter().map(|(k, v)| (Value::String(k), v)).collect()),
        other => Err(other),
    }
}

/// A set: distinct elements in a stable order.
pub fn set_of(items: Vec<Value>) -> Value {
    let mut seen = BTreeMap::new();
    for v in items {
        seen.entry(v.to_json().to_string()).or_insert(v);
    }
    Value::Set(seen.into_values().collect())
}
