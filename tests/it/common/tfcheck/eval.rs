//! Terraform's expression language over [`Value`]s, as far as it can be
//! evaluated offline: inputs, locals, module outputs, the functions the
//! modules use, and resources' configured arguments (a resource attribute
//! the configuration sets is known at plan; any other is known only after
//! apply; a data source is read at plan). A function this file does not
//! model is an error, so a new one cannot slip past unevaluated.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use hcl::expr::{BinaryOperator, Expression, FuncCall, ObjectKey, Operation, TraversalOperator, UnaryOperator};
use hcl::template::{Directive, Element, Template};

use super::value::{convert, elements, number_text, set_of, Attr, Ty, Unknown, Value};
use super::{attribute, label, Module};

/// Names bound by `for`, `each`, `count`, `dynamic` iterators.
pub type Env = Vec<(String, Value)>;

pub fn bind(env: &Env, name: &str, value: Value) -> Env {
    let mut env = env.clone();
    env.push((name.to_string(), value));
    env
}

/// One module instance being evaluated: its inputs, its locals (computed
/// once, on first use) and the modules it calls.
pub struct Ctx {
    pub module: Module,
    pub vars: BTreeMap<String, Value>,
    /// What was wrong with the inputs the caller gave (reported by `plan`).
    pub input_problems: Vec<String>,
    locals: RefCell<BTreeMap<String, Option<Result<Value, String>>>>,
    children: RefCell<BTreeMap<String, Result<Rc<Ctx>, String>>>,
}

impl Ctx {
    /// The module with `given` inputs (converted to their types; defaults
    /// for the rest; an input nobody gives is a value known at plan).
    pub fn new(module: Module, given: BTreeMap<String, Value>, required_given: bool) -> Ctx {
        let mut problems = Vec::new();
        let mut vars = BTreeMap::new();
        let mut given = given;
        for (name, block) in module.variables() {
            let ty = match attribute(block.body(), "type").map(parse_type) {
                Some(Ok(ty)) => ty,
                Some(Err(e)) => {
                    problems.push(format!("var.{name}: type: {e}"));
                    Ty::Any
                }
                None => Ty::Any,
            };
            let value = match given.remove(&name) {
                Some(v) => v,
                None => match attribute(block.body(), "default").map(constant) {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => {
                        problems.push(format!("var.{name}: default: {e}"));
                        Value::Unknown(Unknown::AtPlan)
                    }
                    None => {
                        if required_given {
                            problems.push(format!("var.{name}: required, and not given"));
                        }
                        Value::Unknown(Unknown::AtPlan)
                    }
                },
            };
            let value = convert(value, &ty, &format!("var.{name}")).unwrap_or_else(|e| {
                problems.push(e);
                Value::Unknown(Unknown::AtPlan)
            });
            vars.insert(name, value);
        }
        for name in given.keys() {
            problems.push(format!("{name} is not an input of {}", module.dir.display()));
        }
        Ctx { module, vars, input_problems: problems, locals: RefCell::default(), children: RefCell::default() }
    }

    pub fn local(&self, name: &str) -> Result<Value, String> {
        if let Some(done) = self.locals.borrow().get(name) {
            return done.clone().unwrap_or_else(|| Err(format!("local.{name} depends on itself")));
        }
        let expr = self.module.locals().get(name).map(|e| (*e).clone()).ok_or(format!("no local.{name}"))?;
        self.locals.borrow_mut().insert(name.to_string(), None);
        let value = self.eval(&expr, &Env::new()).map_err(|e| format!("local.{name}: {e}"));
        self.locals.borrow_mut().insert(name.to_string(), Some(value.clone()));
        value
    }

    /// The instance of `module "name"` this module calls (its arguments
    /// evaluated here), when its source is a local directory.
    pub fn child(&self, name: &str) -> Result<Rc<Ctx>, String> {
        if let Some(done) = self.children.borrow().get(name) {
            return done.clone();
        }
        let child = (|| {
            let call = self.module.block("module", &[name]).ok_or(format!("no module.{name}"))?;
            let dir = self.module.child_dir(call).ok_or(format!("module.{name}: not a local source"))?;
            let module = Module::load(&dir)?;
            let env = self.instance_env(call.body());
            let mut given = BTreeMap::new();
            for a in call.body().attributes() {
                if !super::MODULE_META.contains(&a.key()) {
                    let v = self.eval(a.expr(), &env).map_err(|e| format!("module.{name}.{}: {e}", a.key()))?;
                    given.insert(a.key().to_string(), v);
                }
            }
            Ok(Rc::new(Ctx::new(module, given, true)))
        })();
        self.children.borrow_mut().insert(name.to_string(), child.clone());
        child
    }

    /// `each` and `count` for a block evaluated once, standing for all its instances.
    pub fn instance_env(&self, body: &hcl::Body) -> Env {
        let mut env = Env::new();
        if attribute(body, "for_each").is_some() {
            env.push(("each".into(), Value::Unknown(Unknown::AtPlan)));
        }
        if attribute(body, "count").is_some() {
            env.push(("count".into(), Value::Unknown(Unknown::AtPlan)));
        }
        env
    }

    pub fn eval(&self, e: &Expression, env: &Env) -> Result<Value, String> {
        match e {
            Expression::Null => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b)),
            Expression::Number(n) => n.as_f64().map(Value::Number).ok_or_else(|| format!("bad number {n}")),
            Expression::String(s) => Ok(Value::String(s.clone())),
            Expression::Array(items) => {
                items.iter().map(|i| self.eval(i, env)).collect::<Result<_, _>>().map(Value::List)
            }
            Expression::Object(obj) => {
                let mut map = BTreeMap::new();
                for (k, v) in obj {
                    let key = match k {
                        ObjectKey::Identifier(i) => Value::String(i.to_string()),
                        ObjectKey::Expression(Expression::Variable(v)) => Value::String(v.to_string()),
                        ObjectKey::Expression(k) => self.eval(k, env)?,
                        other => return Err(format!("object key {other:?}")),
                    };
                    let value = self.eval(v, env)?;
                    match key {
                        Value::Unknown(u) => return Ok(Value::Unknown(u)),
                        key => map.insert(key.to_text().map_err(|e| format!("object key: {e}"))?, value),
                    };
                }
                Ok(Value::Map(map))
            }
            Expression::TemplateExpr(t) => self.template(&Template::from_expr(t).map_err(|e| e.to_string())?, env),
            Expression::Variable(v) => self.reference(v.as_str(), &[], env),
            Expression::Traversal(t) => match &t.expr {
                Expression::Variable(v) => self.reference(v.as_str(), &t.operators, env),
                other => {
                    let base = self.eval(other, env)?;
                    self.apply(base, &t.operators, env)
                }
            },
            Expression::FuncCall(f) => self.call(f, env),
            Expression::Parenthesis(inner) => self.eval(inner, env),
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr, env)?;
                let pick = match cond {
                    Value::Unknown(u) => return Ok(Value::Unknown(u)),
                    Value::Bool(b) => b,
                    Value::String(s) if s == "true" || s == "false" => s == "true",
                    other => return Err(format!("a condition must be a bool, got a {}", other.kind())),
                };
                let (chosen, other) = if pick { (&c.true_expr, &c.false_expr) } else { (&c.false_expr, &c.true_expr) };
                let value = self.eval(chosen, env)?;
                // Both results must have one type, whichever is chosen (HCL
                // discards only the other branch's errors).
                if let Ok(other) = self.eval(other, env) {
                    if let (Some(a), Some(b)) = (shape(&value), shape(&other)) {
                        if a != b {
                            return Err(format!(
                                "the results of `{}` are a {} and a {}: Terraform cannot give them one type",
                                hcl::format::to_string(e).unwrap_or_default().trim(),
                                value.kind(),
                                other.kind()
                            ));
                        }
                    }
                }
                Ok(value)
            }
            Expression::Operation(op) => self.operation(op, env),
            Expression::ForExpr(f) => {
                let collection = self.eval(&f.collection_expr, env)?;
                let pairs = match elements(collection) {
                    Ok(pairs) => pairs,
                    Err(Value::Unknown(u)) => return Ok(Value::Unknown(u)),
                    Err(other) => return Err(format!("`for` over a {}", other.kind())),
                };
                let mut list = Vec::new();
                let mut map: BTreeMap<String, Value> = BTreeMap::new();
                for (k, v) in pairs {
                    let mut inner = bind(env, f.value_var.as_str(), v);
                    if let Some(kv) = &f.key_var {
                        inner = bind(&inner, kv.as_str(), k);
                    }
                    if let Some(cond) = &f.cond_expr {
                        match self.eval(cond, &inner)? {
                            Value::Bool(true) => {}
                            Value::Bool(false) => continue,
                            Value::Unknown(u) => return Ok(Value::Unknown(u)),
                            other => return Err(format!("a `for` condition must be a bool, got a {}", other.kind())),
                        }
                    }
                    let value = self.eval(&f.value_expr, &inner)?;
                    let Some(key_expr) = &f.key_expr else {
                        list.push(value);
                        continue;
                    };
                    let key = match self.eval(key_expr, &inner)? {
                        Value::Unknown(u) => return Ok(Value::Unknown(u)),
                        key => key.to_text().map_err(|e| format!("`for` key: {e}"))?,
                    };
                    if f.grouping {
                        match map.entry(key).or_insert_with(|| Value::List(Vec::new())) {
                            Value::List(group) => group.push(value),
                            _ => unreachable!("groups are lists"),
                        }
                    } else if map.insert(key.clone(), value).is_some() {
                        return Err(format!("`for` makes the key {key:?} twice (use `...` to group)"));
                    }
                }
                Ok(if f.key_expr.is_some() { Value::Map(map) } else { Value::List(list) })
            }
            other => Err(format!("expression not modelled: {other:?}")),
        }
    }

    fn template(&self, t: &Template, env: &Env) -> Result<Value, String> {
        let mut out = String::new();
        let mut unknown = None;
        for element in t.elements() {
            match element {
                Element::Literal(s) => out.push_str(s),
                Element::Interpolation(i) => match self.eval(&i.expr, env)? {
                    Value::Unknown(u) => unknown = unknown.max(Some(u)),
                    v => out.push_str(&v.to_text().map_err(|e| format!("in a template: {e}"))?),
                },
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        let part = match self.eval(&d.cond_expr, env)? {
                            Value::Bool(true) => Some(&d.true_template),
                            Value::Bool(false) => d.false_template.as_ref(),
                            Value::Unknown(u) => {
                                unknown = unknown.max(Some(u));
                                None
                            }
                            other => return Err(format!("%{{if}} needs a bool, got a {}", other.kind())),
                        };
                        if let Some(part) = part {
                            match self.template(part, env)? {
                                Value::String(s) => out.push_str(&s),
                                Value::Unknown(u) => unknown = unknown.max(Some(u)),
                                _ => unreachable!("templates make strings"),
                            }
                        }
                    }
                    Directive::For(d) => {
                        let items = match elements(self.eval(&d.collection_expr, env)?) {
                            Ok(items) => items,
                            Err(Value::Unknown(u)) => return Ok(Value::Unknown(u)),
                            Err(other) => return Err(format!("%{{for}} over a {}", other.kind())),
                        };
                        for (k, v) in items {
                            let mut inner = bind(env, d.value_var.as_str(), v);
                            if let Some(kv) = &d.key_var {
                                inner = bind(&inner, kv.as_str(), k);
                            }
                            match self.template(&d.template, &inner)? {
                                Value::String(s) => out.push_str(&s),
                                Value::Unknown(u) => unknown = unknown.max(Some(u)),
                                _ => unreachable!("templates make strings"),
                            }
                        }
                    }
                },
            }
        }
        Ok(unknown.map_or(Value::String(out), Value::Unknown))
    }

    /// A traversal from a root name.
    fn reference(&self, root: &str, ops: &[TraversalOperator], env: &Env) -> Result<Value, String> {
        if let Some((_, v)) = env.iter().rev().find(|(n, _)| n == root) {
            return self.apply(v.clone(), ops, env);
        }
        let name = |i: usize| match ops.get(i) {
            Some(TraversalOperator::GetAttr(n)) => Ok(n.as_str()),
            _ => Err(format!("`{root}` needs a name after it")),
        };
        match root {
            "var" => {
                let v = self.vars.get(name(0)?).cloned().ok_or(format!("var.{} is not declared", name(0)?))?;
                self.apply(v, &ops[1..], env)
            }
            "local" => self.apply(self.local(name(0)?)?, &ops[1..], env),
            "module" => {
                let call = self.module.block("module", &[name(0)?]).ok_or(format!("no module.{}", name(0)?))?;
                if attribute(call.body(), "count").is_some() || attribute(call.body(), "for_each").is_some() {
                    return Ok(Value::Unknown(Unknown::AtPlan));
                }
                let call_name = name(0)?;
                let child = self.child(call_name)?;
                let mut outputs = BTreeMap::new();
                for (out, block) in child.module.outputs() {
                    let expr = attribute(block.body(), "value").ok_or(format!("output {out} has no value"))?;
                    let v = child.eval(expr, &Env::new()).map_err(|e| format!("module.{call_name}.{out}: {e}"))?;
                    outputs.insert(out, v);
                }
                self.apply(Value::Map(outputs), &ops[1..], env)
            }
            "data" => {
                self.module.block("data", &[name(0)?, name(1)?]).ok_or(format!("no data.{}.{}", name(0)?, name(1)?))?;
                Ok(Value::Unknown(Unknown::AtPlan)) // read during plan
            }
            "path" => Ok(Value::String(match name(0)? {
                "module" => self.module.dir.display().to_string(),
                _ => ".".to_string(),
            })),
            "terraform" => Ok(Value::String("default".into())),
            "each" | "count" | "self" => Err(format!("{root}.* is not in scope here")),
            ty => {
                let block =
                    self.module.block("resource", &[ty, name(0)?]).ok_or(format!("no resource {ty}.{}", name(0)?))?;
                let mut rest = &ops[1..];
                if attribute(block.body(), "count").is_some() || attribute(block.body(), "for_each").is_some() {
                    match rest.first() {
                        Some(TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_)) => rest = &rest[1..],
                        _ => return Ok(Value::Unknown(Unknown::AfterApply)),
                    }
                }
                // An argument the configuration sets is known at plan as configured.
                let configured = match rest.first() {
                    Some(TraversalOperator::GetAttr(attr)) => attribute(block.body(), attr.as_str()),
                    _ => None,
                };
                match configured {
                    Some(expr) => {
                        let v = self.eval(expr, &self.instance_env(block.body()))?;
                        self.apply(v, &rest[1..], env)
                    }
                    None => Ok(Value::Unknown(Unknown::AfterApply)),
                }
            }
        }
    }

    /// Attribute access, indexing and splats.
    fn apply(&self, mut value: Value, ops: &[TraversalOperator], env: &Env) -> Result<Value, String> {
        for (i, op) in ops.iter().enumerate() {
            if let Value::Unknown(u) = value {
                return Ok(Value::Unknown(u));
            }
            value = match op {
                TraversalOperator::GetAttr(name) => match value {
                    Value::Map(mut m) => m.remove(name.as_str()).ok_or_else(|| {
                        format!(
                            "no attribute {:?} (it has: {})",
                            name.as_str(),
                            m.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    })?,
                    Value::Null => return Err(format!("attribute {:?} of a null value", name.as_str())),
                    other => return Err(format!("attribute {:?} of a {}", name.as_str(), other.kind())),
                },
                TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_) => {
                    let key = match op {
                        TraversalOperator::Index(e) => self.eval(e, env)?,
                        TraversalOperator::LegacyIndex(n) => Value::Number(*n as f64),
                        _ => unreachable!(),
                    };
                    index(value, key)?
                }
                TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                    let rest = &ops[i + 1..];
                    return match value {
                        Value::Null => Ok(Value::List(Vec::new())),
                        Value::List(items) | Value::Set(items) => items
                            .into_iter()
                            .map(|v| self.apply(v, rest, env))
                            .collect::<Result<_, _>>()
                            .map(Value::List),
                        other => Ok(Value::List(vec![self.apply(other, rest, env)?])),
                    };
                }
            };
        }
        Ok(value)
    }

    fn operation(&self, op: &Operation, env: &Env) -> Result<Value, String> {
        match op {
            Operation::Unary(u) => match (u.operator, self.eval(&u.expr, env)?) {
                (_, Value::Unknown(k)) => Ok(Value::Unknown(k)),
                (UnaryOperator::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                (UnaryOperator::Neg, v) => Ok(Value::Number(-number(&v)?)),
                (UnaryOperator::Not, v) => Err(format!("`!` needs a bool, got a {}", v.kind())),
            },
            Operation::Binary(b) => {
                // Both sides are evaluated (an error on either is an error).
                let (l, r) = (self.eval(&b.lhs_expr, env)?, self.eval(&b.rhs_expr, env)?);
                use BinaryOperator::*;
                // Unknown, but for a comparison with null of a value known not to be null.
                if let Some(u) = l.unknown_inside().max(r.unknown_inside()) {
                    let against_null = matches!(b.operator, Eq | NotEq)
                        && (l == Value::Null || r == Value::Null)
                        && !matches!(l, Value::Unknown(_))
                        && !matches!(r, Value::Unknown(_));
                    if !against_null {
                        return Ok(Value::Unknown(u));
                    }
                }
                Ok(match b.operator {
                    Eq => Value::Bool(equal(&l, &r)),
                    NotEq => Value::Bool(!equal(&l, &r)),
                    And | Or => {
                        let (Value::Bool(x), Value::Bool(y)) = (&l, &r) else {
                            return Err(format!("`&&`/`||` need bools, got a {} and a {}", l.kind(), r.kind()));
                        };
                        Value::Bool(if b.operator == And { *x && *y } else { *x || *y })
                    }
                    Less => Value::Bool(number(&l)? < number(&r)?),
                    LessEq => Value::Bool(number(&l)? <= number(&r)?),
                    Greater => Value::Bool(number(&l)? > number(&r)?),
                    GreaterEq => Value::Bool(number(&l)? >= number(&r)?),
                    Plus => Value::Number(number(&l)? + number(&r)?),
                    Minus => Value::Number(number(&l)? - number(&r)?),
                    Mul => Value::Number(number(&l)? * number(&r)?),
                    Div | Mod if number(&r)? == 0.0 => return Err("division by zero".into()),
                    Div => Value::Number(number(&l)? / number(&r)?),
                    Mod => Value::Number(number(&l)? % number(&r)?),
                })
            }
        }
    }

    fn call(&self, f: &FuncCall, env: &Env) -> Result<Value, String> {
        let name = f.name.name.as_str();
        if !f.name.namespace.is_empty() {
            return Ok(Value::Unknown(Unknown::AtPlan)); // provider-defined functions
        }
        match name {
            // `try` and `can` see their arguments' errors.
            "try" => {
                for a in &f.args {
                    if let Ok(v) = self.eval(a, env) {
                        return Ok(v);
                    }
                }
                Err("no argument of try() could be evaluated".into())
            }
            "can" => match self.eval(&f.args[0], env) {
                Ok(Value::Unknown(u)) => Ok(Value::Unknown(u)),
                Ok(_) => Ok(Value::Bool(true)),
                Err(_) => Ok(Value::Bool(false)),
            },
            _ => {
                let mut args: Vec<Value> = f.args.iter().map(|a| self.eval(a, env)).collect::<Result<_, _>>()?;
                if f.expand_final {
                    match args.pop() {
                        Some(Value::List(items) | Value::Set(items)) => args.extend(items),
                        Some(Value::Unknown(u)) => return Ok(Value::Unknown(u)),
                        Some(other) => return Err(format!("`...` expands a list, not a {}", other.kind())),
                        None => {}
                    }
                }
                function(name, args).map_err(|e| format!("{name}(): {e}"))
            }
        }
    }
}

/// A value written as a constant (a default, an `optional` default).
pub fn constant(e: &Expression) -> Result<Value, String> {
    let empty = Ctx::new(Module { dir: ".".into(), blocks: Vec::new() }, BTreeMap::new(), false);
    empty.eval(e, &Env::new())
}

/// A `type = …` constraint.
pub fn parse_type(e: &Expression) -> Result<Ty, String> {
    match e {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(Ty::String),
            "number" => Ok(Ty::Number),
            "bool" => Ok(Ty::Bool),
            "any" => Ok(Ty::Any),
            other => Err(format!("unknown type {other}")),
        },
        Expression::FuncCall(f) => {
            let arg = |i: usize| f.args.get(i).ok_or(format!("{}() needs an argument", f.name.name));
            match f.name.name.as_str() {
                "list" => Ok(Ty::List(Box::new(parse_type(arg(0)?)?))),
                "set" => Ok(Ty::Set(Box::new(parse_type(arg(0)?)?))),
                "map" => Ok(Ty::Map(Box::new(parse_type(arg(0)?)?))),
                "tuple" => match arg(0)? {
                    Expression::Array(items) => items.iter().map(parse_type).collect::<Result<_, _>>().map(Ty::Tuple),
                    _ => Err("tuple([…])".into()),
                },
                "object" => {
                    let Expression::Object(attrs) = arg(0)? else { return Err("object({…})".into()) };
                    let mut out = BTreeMap::new();
                    for (k, v) in attrs {
                        let name = match k {
                            ObjectKey::Identifier(i) => i.to_string(),
                            ObjectKey::Expression(Expression::Variable(v)) => v.to_string(),
                            ObjectKey::Expression(Expression::String(s)) => s.clone(),
                            other => return Err(format!("object attribute name {other:?}")),
                        };
                        let attr = match v {
                            Expression::FuncCall(o) if o.name.name.as_str() == "optional" => {
                                let ty = parse_type(o.args.first().ok_or("optional() needs a type")?)?;
                                let default = o.args.get(1).map(constant).transpose()?;
                                let default =
                                    default.map(|d| convert(d, &ty, &format!("default of {name}"))).transpose()?;
                                Attr { ty, optional: true, default }
                            }
                            other => Attr { ty: parse_type(other)?, optional: false, default: None },
                        };
                        out.insert(name, attr);
                    }
                    Ok(Ty::Object(out))
                }
                other => Err(format!("unknown type constructor {other}()")),
            }
        }
        other => Err(format!("not a type: {other:?}")),
    }
}

/// Whether `cond ? a : b` could give its two results one type.
fn shape(v: &Value) -> Option<&'static str> {
    match v {
        Value::Null | Value::Unknown(_) => None,
        Value::Bool(_) | Value::Number(_) | Value::String(_) => Some("primitive"),
        Value::List(_) | Value::Set(_) => Some("sequence"),
        Value::Map(_) => Some("mapping"),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::List(x) | Value::Set(x), Value::List(y) | Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        _ => a == b,
    }
}

fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::String(s) => s.trim().parse().map_err(|_| format!("a number is required, got {s:?}")),
        other => Err(format!("a number is required, got a {}", other.kind())),
    }
}

fn text(v: &Value) -> Result<String, String> {
    v.to_text()
}

fn items(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::List(items) | Value::Set(items) => Ok(items),
        other => Err(format!("a list is required, got a {}", other.kind())),
    }
}

fn index(value: Value, key: Value) -> Result<Value, String> {
    match (value, key) {
        (_, Value::Unknown(u)) => Ok(Value::Unknown(u)),
        (Value::List(items), key) => {
            let i = number(&key)?;
            items
                .get(i as usize)
                .cloned()
                .filter(|_| i >= 0.0 && i.fract() == 0.0)
                .ok_or_else(|| format!("index {} is out of range for a list of {}", number_text(i), items.len()))
        }
        (Value::Map(m), key) => {
            let k = text(&key)?;
            m.get(&k).cloned().ok_or_else(|| format!("no element with key {k:?}"))
        }
        (Value::Set(_), _) => Err("a set cannot be indexed: its elements have no keys (use tolist or a map)".into()),
        (Value::Null, _) => Err("a null value cannot be indexed".into()),
        (other, _) => Err(format!("a {} cannot be indexed", other.kind())),
    }
}

/// Functions that take collections holding unknown elements; the rest give
/// an unknown result as soon as any argument holds one.
const STRUCTURAL: &[&str] = &[
    "length",
    "concat",
    "merge",
    "keys",
    "values",
    "tolist",
    "tomap",
    "flatten",
    "coalesce",
    "lookup",
    "element",
    "jsonencode",
];

fn function(name: &str, args: Vec<Value>) -> Result<Value, String> {
    let arg = |i: usize| args.get(i).cloned().ok_or(format!("argument {} is missing", i + 1));
    if let Some(u) = args.iter().filter_map(|a| if let Value::Unknown(u) = a { Some(*u) } else { None }).max() {
        return Ok(Value::Unknown(u));
    }
    if !STRUCTURAL.contains(&name) {
        if let Some(u) = args.iter().filter_map(Value::unknown_inside).max() {
            return Ok(Value::Unknown(u));
        }
    }
    let string = |i: usize| arg(i).and_then(|v| text(&v));
    Ok(match name {
        "length" => Value::Number(match arg(0)? {
            Value::List(x) | Value::Set(x) => x.len(),
            Value::Map(m) => m.len(),
            Value::String(s) => s.chars().count(),
            other => return Err(format!("length of a {}", other.kind())),
        } as f64),
        "concat" => Value::List(args.into_iter().map(items).collect::<Result<Vec<_>, _>>()?.concat()),
        "merge" => {
            let mut out = BTreeMap::new();
            for a in args {
                match a {
                    Value::Null => {}
                    Value::Map(m) => out.extend(m),
                    other => return Err(format!("merge of a {}", other.kind())),
                }
            }
            Value::Map(out)
        }
        "keys" | "values" => match arg(0)? {
            Value::Map(m) if name == "keys" => Value::List(m.into_keys().map(Value::String).collect()),
            Value::Map(m) => Value::List(m.into_values().collect()),
            other => return Err(format!("{name} of a {}", other.kind())),
        },
        "lookup" => match arg(0)? {
            Value::Map(m) => match m.get(&string(1)?) {
                Some(v) => v.clone(),
                None => arg(2).map_err(|_| format!("no key {:?} and no default", string(1).unwrap_or_default()))?,
            },
            other => return Err(format!("lookup in a {}", other.kind())),
        },
        "element" => {
            let list = items(arg(0)?)?;
            if list.is_empty() {
                return Err("element of an empty list".into());
            }
            list[number(&arg(1)?)? as usize % list.len()].clone()
        }
        "tolist" => Value::List(items(arg(0)?)?),
        "toset" => set_of(items(arg(0)?)?),
        "tomap" => match arg(0)? {
            m @ Value::Map(_) => m,
            other => return Err(format!("tomap of a {}", other.kind())),
        },
        "flatten" => {
            fn flat(v: Value, out: &mut Vec<Value>) {
                match v {
                    Value::List(items) | Value::Set(items) => items.into_iter().for_each(|i| flat(i, out)),
                    other => out.push(other),
                }
            }
            let mut out = Vec::new();
            items(arg(0)?)?.into_iter().for_each(|i| flat(i, &mut out));
            Value::List(out)
        }
        "coalesce" => args
            .into_iter()
            .find(|a| !matches!(a, Value::Null) && *a != Value::String(String::new()))
            .ok_or("every argument is null or empty")?,
        "jsonencode" => match arg(0)?.unknown_inside() {
            Some(u) => Value::Unknown(u),
            None => Value::String(go_json(&arg(0)?.to_json())),
        },
        "tostring" => match arg(0)? {
            Value::Null => Value::Null,
            v => Value::String(text(&v)?),
        },
        "tonumber" => match arg(0)? {
            Value::Null => Value::Null,
            v => Value::Number(number(&v)?),
        },
        "tobool" => match arg(0)? {
            v @ (Value::Null | Value::Bool(_)) => v,
            Value::String(s) if s == "true" || s == "false" => Value::Bool(s == "true"),
            other => return Err(format!("tobool of {}", other.brief())),
        },
        "split" => Value::List(string(1)?.split(string(0)?.as_str()).map(|s| Value::String(s.into())).collect()),
        "join" => {
            let sep = string(0)?;
            let mut parts = Vec::new();
            for list in args.into_iter().skip(1) {
                for v in items(list)? {
                    parts.push(text(&v).map_err(|e| format!("element: {e}"))?);
                }
            }
            Value::String(parts.join(&sep))
        }
        "contains" => {
            let needle = arg(1)?;
            Value::Bool(items(arg(0)?)?.iter().any(|v| equal(v, &needle)))
        }
        "startswith" => Value::Bool(string(0)?.starts_with(&string(1)?)),
        "endswith" => Value::Bool(string(0)?.ends_with(&string(1)?)),
        "trimprefix" => {
            Value::String(string(0)?.strip_prefix(string(1)?.as_str()).map(str::to_string).unwrap_or(string(0)?))
        }
        "trimsuffix" => {
            Value::String(string(0)?.strip_suffix(string(1)?.as_str()).map(str::to_string).unwrap_or(string(0)?))
        }
        "trimspace" => Value::String(string(0)?.trim().to_string()),
        "lower" => Value::String(string(0)?.to_lowercase()),
        "upper" => Value::String(string(0)?.to_uppercase()),
        "substr" => {
            let chars: Vec<char> = string(0)?.chars().collect();
            let (offset, length) = (number(&arg(1)?)?, number(&arg(2)?)?);
            let start = if offset < 0.0 { chars.len().saturating_sub((-offset) as usize) } else { offset as usize };
            if start > chars.len() {
                return Err(format!("offset {} is past the end of the string", number_text(offset)));
            }
            let end = if length < 0.0 { chars.len() } else { (start + length as usize).min(chars.len()) };
            Value::String(chars[start..end].iter().collect())
        }
        "replace" => {
            let (s, find, with) = (string(0)?, string(1)?, string(2)?);
            match find.strip_prefix('/').and_then(|f| f.strip_suffix('/')) {
                Some(pattern) => {
                    let re = regex_lite::Regex::new(pattern).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
                    Value::String(re.replace_all(&s, with.as_str()).into_owned())
                }
                None => Value::String(s.replace(&find, &with)),
            }
        }
        "regex" => {
            let (pattern, s) = (string(0)?, string(1)?);
            let re = regex_lite::Regex::new(&pattern).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
            let caps = re.captures(&s).ok_or(format!("{pattern:?} does not match {s:?}"))?;
            let named: Vec<&str> = re.capture_names().flatten().collect();
            if !named.is_empty() {
                Value::Map(
                    named
                        .iter()
                        .map(|n| {
                            (n.to_string(), caps.name(n).map_or(Value::Null, |m| Value::String(m.as_str().into())))
                        })
                        .collect(),
                )
            } else if caps.len() > 1 {
                Value::List(
                    (1..caps.len())
                        .map(|i| caps.get(i).map_or(Value::Null, |m| Value::String(m.as_str().into())))
                        .collect(),
                )
            } else {
                Value::String(caps[0].to_string())
            }
        }
        "regexall" => {
            let (pattern, s) = (string(0)?, string(1)?);
            let re = regex_lite::Regex::new(&pattern).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
            let named: Vec<&str> = re.capture_names().flatten().collect();
            Value::List(
                re.captures_iter(&s)
                    .map(|caps| {
                        let group = |m: Option<regex_lite::Match<'_>>| {
                            m.map_or(Value::Null, |m| Value::String(m.as_str().into()))
                        };
                        if !named.is_empty() {
                            Value::Map(named.iter().map(|n| (n.to_string(), group(caps.name(n)))).collect())
                        } else if caps.len() > 1 {
                            Value::List((1..caps.len()).map(|i| group(caps.get(i))).collect())
                        } else {
                            Value::String(caps[0].to_string())
                        }
                    })
                    .collect(),
            )
        }
        "format" => {
            let fmt = string(0)?;
            let mut rest = args.iter().skip(1);
            let mut out = String::new();
            let mut chars = fmt.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some(verb @ ('s' | 'd' | 'v' | 'q')) => {
                        let v = rest.next().ok_or("more verbs than arguments")?;
                        match verb {
                            'd' => out.push_str(&number_text(number(v)?.trunc())),
                            'q' => out.push_str(&serde_json::Value::String(text(v)?).to_string()),
                            _ => out.push_str(&text(v)?),
                        }
                    }
                    other => return Err(format!("verb %{} is not modelled", other.unwrap_or(' '))),
                }
            }
            Value::String(out)
        }
        "range" => {
            let nums: Vec<f64> = args.iter().map(number).collect::<Result<_, _>>()?;
            let (start, limit, step) = match nums.as_slice() {
                [limit] => (0.0, *limit, 1.0),
                [start, limit] => (*start, *limit, if limit >= start { 1.0 } else { -1.0 }),
                [start, limit, step] => (*start, *limit, *step),
                _ => return Err("one to three arguments".into()),
            };
            if step == 0.0 {
                return Err("step 0".into());
            }
            let mut out = Vec::new();
            let mut n = start;
            while (step > 0.0 && n < limit) || (step < 0.0 && n > limit) {
                out.push(Value::Number(n));
                n += step;
            }
            Value::List(out)
        }
        "distinct" => {
            let mut out: Vec<Value> = Vec::new();
            for v in items(arg(0)?)? {
                if !out.iter().any(|o| equal(o, &v)) {
                    out.push(v);
                }
            }
            Value::List(out)
        }
        "compact" => Value::List(
            items(arg(0)?)?
                .into_iter()
                .filter(|v| !matches!(v, Value::Null) && *v != Value::String(String::new()))
                .collect(),
        ),
        "alltrue" | "anytrue" => {
            let bools: Vec<bool> = items(arg(0)?)?
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Ok(*b),
                    Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
                    other => Err(format!("a bool is required, got a {}", other.kind())),
                })
                .collect::<Result<_, _>>()?;
            Value::Bool(if name == "alltrue" { bools.iter().all(|b| *b) } else { bools.iter().any(|b| *b) })
        }
        "floor" => Value::Number(number(&arg(0)?)?.floor()),
        "ceil" => Value::Number(number(&arg(0)?)?.ceil()),
        "abs" => Value::Number(number(&arg(0)?)?.abs()),
        "max" | "min" => {
            let nums: Vec<f64> = args.iter().map(number).collect::<Result<_, _>>()?;
            let pick = if name == "max" { f64::max } else { f64::min };
            Value::Number(nums.into_iter().reduce(pick).ok_or("no arguments")?)
        }
        // Read from disk at plan: the zip a user downloads first.
        "file" | "filebase64" | "filebase64sha256" | "filesha256" | "fileexists" | "templatefile" => {
            Value::Unknown(Unknown::AtPlan)
        }
        "timestamp" | "uuid" => Value::Unknown(Unknown::AfterApply),
        other => {
            return Err(format!(
                "{other} is not modelled by the infra checker (tests/it/common/tfcheck/eval.rs): add it"
            ))
        }
    })
}

/// JSON as Go's encoder writes it (Terraform's `jsonencode`): `<`, `>`
/// and `&` escaped, which counts toward lengths such as Lambda's 4 KB.
fn go_json(v: &serde_json::Value) -> String {
    v.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// The labels of a block, for messages.
pub fn block_name(b: &hcl::Block) -> String {
    let labels: Vec<String> = (0..b.labels().len()).map(|i| label(b, i)).collect();
    if labels.is_empty() {
        b.identifier().to_string()
    } else {
        format!("{} {}", b.identifier(), labels.join("."))
    }
}
