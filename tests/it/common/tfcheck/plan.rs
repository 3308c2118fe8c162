//! The evaluation half of `terraform plan`, offline: for one module and
//! its inputs, every variable validation, local, `count`, `for_each`,
//! resource and data source argument (per instance), `dynamic` block,
//! precondition, `check` assertion and output is evaluated, and each
//! module it calls is checked the same way with the inputs it is given.
//! A failing `check` assertion is a warning, as in Terraform: `warnings`
//! lists them.

use std::collections::BTreeMap;
use std::path::Path;

use hcl::{Block, Body};

use super::eval::{bind, block_name, Ctx, Env};
use super::value::{elements, Unknown, Value};
use super::{attribute, label, Module};

/// What `terraform plan` would refuse in the module at `dir`, given
/// `inputs` (the rest take their defaults; one with no default is a value
/// known only at plan). `strict`: a precondition that evaluates to false is
/// a problem too (an example must plan as written; a module's defaults
/// alone may leave required choices open).
pub fn plan(dir: &Path, inputs: BTreeMap<String, Value>, strict: bool) -> Result<Vec<String>, String> {
    let ctx = Ctx::new(Module::load(dir)?, inputs, false);
    let mut problems = Vec::new();
    Planner { strict, at: dir.display().to_string() }.module(&ctx, &mut problems);
    // Once each, not once per instance that shows it.
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    Ok(problems)
}

/// The warnings `terraform plan` would print for the module at `dir`
/// given `inputs`: each `check` block's assertion that fails, as
/// `check <name>: <its error_message>`, through the modules it calls with
/// the inputs they are given (`module.<name> → check <name>: …`).
pub fn warnings(dir: &Path, inputs: BTreeMap<String, Value>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    warnings_in(&Ctx::new(Module::load(dir)?, inputs, false), "", &mut out);
    Ok(out)
}

fn warnings_in(ctx: &Ctx, at: &str, out: &mut Vec<String>) {
    for (what, assert) in assertions(&ctx.module) {
        if let Ok(false) = holds(ctx, assert.body(), &Env::new()) {
            out.push(format!("{at}{what}: {}", message(ctx, assert.body())));
        }
    }
    for call in ctx.module.of_kind("module") {
        let name = label(call, 0);
        if let Ok(child) = ctx.child(&name) {
            warnings_in(&child, &format!("{at}module.{name} → "), out);
        }
    }
}

/// Every `assert` of every `check` block, named by its check.
fn assertions(module: &Module) -> Vec<(String, &Block)> {
    module
        .of_kind("check")
        .flat_map(|c| {
            let what = block_name(c);
            c.body().blocks().filter(|b| b.identifier() == "assert").map(move |a| (what.clone(), a))
        })
        .collect()
}

/// A precondition's or assertion's `condition`: true (or unknown until
/// apply), false, or why it or its `error_message` cannot be evaluated.
fn holds(ctx: &Ctx, body: &Body, env: &Env) -> Result<bool, String> {
    let Some(cond) = attribute(body, "condition") else { return Err("no condition".into()) };
    if let Some(Err(e)) = attribute(body, "error_message").map(|m| ctx.eval(m, env)) {
        return Err(format!("error_message: {e}"));
    }
    match ctx.eval(cond, env)? {
        Value::Bool(b) => Ok(b),
        Value::Unknown(_) => Ok(true),
        other => Err(format!("the condition gives a {}", other.kind())),
    }
}

struct Planner {
    strict: bool,
    at: String,
}

impl Planner {
    fn module(&self, ctx: &Ctx, problems: &mut Vec<String>) {
        let mut fail = |what: &str, why: String| problems.push(format!("{}: {what}: {why}", self.at));
        for p in &ctx.input_problems {
            fail("inputs", p.clone());
        }
        // A value given (or defaulted) must pass its variable's validations.
        for (name, block) in ctx.module.variables() {
            for v in block.body().blocks().filter(|b| b.identifier() == "validation") {
                let Some(cond) = attribute(v.body(), "condition") else { continue };
                match ctx.eval(cond, &Env::new()) {
                    Ok(Value::Bool(true) | Value::Unknown(_)) => {}
                    Ok(Value::Bool(false)) => fail(
                        &format!("var.{name}"),
                        format!("{} fails its validation: {}", ctx.vars[&name].brief(), message(ctx, v.body())),
                    ),
                    Ok(other) => fail(&format!("var.{name}"), format!("a validation gives a {}", other.kind())),
                    Err(e) => fail(&format!("var.{name} validation"), e),
                }
            }
        }
        for name in ctx.module.locals().keys() {
            if let Err(e) = ctx.local(name) {
                fail("locals", e);
            }
        }
        for block in ctx.module.blocks.iter().filter(|b| matches!(b.identifier(), "resource" | "data")) {
            let what = block_name(block);
            match self.instances(ctx, block) {
                Ok(envs) => {
                    for env in envs {
                        self.body(ctx, block.body(), &env, &what, problems);
                    }
                }
                Err(e) => problems.push(format!("{}: {what}: {e}", self.at)),
            }
        }
        for (name, block) in ctx.module.outputs() {
            self.body(ctx, block.body(), &Env::new(), &format!("output {name}"), problems);
        }
        // A `check` assertion that fails is a warning (see `warnings`); one
        // that cannot be evaluated is an error here.
        for (what, assert) in assertions(&ctx.module) {
            if let Err(e) = holds(ctx, assert.body(), &Env::new()) {
                problems.push(format!("{}: {what}: {e}", self.at));
            }
        }
        for call in ctx.module.of_kind("module") {
            let name = label(call, 0);
            if let Err(e) = self.instances(ctx, call) {
                problems.push(format!("{}: module.{name}: {e}", self.at));
            }
            let Some(dir) = ctx.module.child_dir(call) else { continue };
            match ctx.child(&name) {
                Ok(child) => {
                    let inner = Planner {
                        strict: self.strict,
                        at: format!("{} → module.{name} ({})", self.at, dir.display()),
                    };
                    inner.module(&child, problems);
                }
                Err(e) => problems.push(format!("{}: module.{name}: {e}", self.at)),
            }
        }
    }

    /// `each`/`count` for every instance of a block, or why Terraform
    /// could not expand it at plan.
    fn instances(&self, ctx: &Ctx, block: &Block) -> Result<Vec<Env>, String> {
        let body = block.body();
        if let Some(count) = attribute(body, "count") {
            return match ctx.eval(count, &Env::new()).map_err(|e| format!("count: {e}"))? {
                Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => Ok((0..n as usize)
                    .map(|i| bind(&Env::new(), "count", Value::Map([("index".into(), Value::Number(i as f64))].into())))
                    .collect()),
                Value::Unknown(Unknown::AfterApply) => {
                    Err("count depends on values known only after apply: Terraform cannot plan it".into())
                }
                Value::Unknown(Unknown::AtPlan) => {
                    Ok(vec![bind(&Env::new(), "count", Value::Unknown(Unknown::AtPlan))])
                }
                other => Err(format!("count must be a whole number ≥ 0, got {}", other.brief())),
            };
        }
        let Some(for_each) = attribute(body, "for_each") else { return Ok(vec![Env::new()]) };
        let each =
            |k: Value, v: Value| bind(&Env::new(), "each", Value::Map([("key".into(), k), ("value".into(), v)].into()));
        match ctx.eval(for_each, &Env::new()).map_err(|e| format!("for_each: {e}"))? {
            Value::Map(m) => Ok(m.into_iter().map(|(k, v)| each(Value::String(k), v)).collect()),
            Value::Set(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(_) => Ok(each(v.clone(), v)),
                    Value::Unknown(Unknown::AtPlan) => Ok(each(v.clone(), v)),
                    Value::Unknown(Unknown::AfterApply) => {
                        Err("for_each holds values known only after apply: Terraform cannot plan it".to_string())
                    }
                    other => Err(format!("for_each over a set of {}s: Terraform needs strings", other.kind())),
                })
                .collect(),
            Value::Unknown(Unknown::AfterApply) => {
                Err("for_each keys depend on values known only after apply: Terraform cannot plan it".into())
            }
            Value::Unknown(Unknown::AtPlan) => {
                Ok(vec![each(Value::Unknown(Unknown::AtPlan), Value::Unknown(Unknown::AtPlan))])
            }
            other @ Value::List(_) => Err(format!(
                "for_each over a list {}: Terraform needs a map or a set of strings (toset)",
                other.brief()
            )),
            other => Err(format!("for_each must be a map or a set of strings, got {}", other.brief())),
        }
    }

    /// Every argument and nested block of one instance.
    fn body(&self, ctx: &Ctx, body: &Body, env: &Env, what: &str, problems: &mut Vec<String>) {
        for a in body.attributes() {
            if matches!(a.key(), "count" | "for_each" | "depends_on" | "provider" | "providers") {
                continue;
            }
            if let Err(e) = ctx.eval(a.expr(), env) {
                problems.push(format!("{}: {what}.{}: {e}", self.at, a.key()));
            }
        }
        for b in body.blocks() {
            let inner = format!("{what}.{}", b.identifier());
            match b.identifier() {
                "dynamic" => self.dynamic(ctx, b, env, &inner, problems),
                "lifecycle" => {
                    for c in b.body().blocks().filter(|c| c.identifier() == "precondition") {
                        self.condition(ctx, c.body(), env, &format!("{inner}.precondition"), problems);
                    }
                    for a in
                        b.body().attributes().filter(|a| matches!(a.key(), "create_before_destroy" | "prevent_destroy"))
                    {
                        if !matches!(a.expr(), hcl::Expression::Bool(_)) {
                            problems.push(format!("{}: {inner}.{}: must be a literal true or false", self.at, a.key()));
                        }
                    }
                }
                "precondition" => self.condition(ctx, b.body(), env, &inner, problems),
                // `self` is the object being created: nothing to evaluate before apply.
                "provisioner" | "connection" | "postcondition" => {}
                _ => self.body(ctx, b.body(), env, &inner, problems),
            }
        }
    }

    fn dynamic(&self, ctx: &Ctx, b: &Block, env: &Env, what: &str, problems: &mut Vec<String>) {
        let what = format!("{what} \"{}\"", label(b, 0));
        let Some(for_each) = attribute(b.body(), "for_each") else {
            return problems.push(format!("{}: {what}: no for_each", self.at));
        };
        let iterator = match attribute(b.body(), "iterator") {
            Some(hcl::Expression::Variable(v)) => v.as_str().to_string(),
            _ => label(b, 0),
        };
        let pairs = match ctx.eval(for_each, env).map(elements) {
            Ok(Ok(pairs)) => pairs,
            Ok(Err(Value::Unknown(u))) => vec![(Value::Unknown(u), Value::Unknown(u))],
            Ok(Err(other)) => {
                return problems.push(format!(
                    "{}: {what}.for_each: a collection is required, got {}",
                    self.at,
                    other.brief()
                ))
            }
            Err(e) => return problems.push(format!("{}: {what}.for_each: {e}", self.at)),
        };
        for (k, v) in pairs {
            let inner = bind(env, &iterator, Value::Map([("key".into(), k), ("value".into(), v)].into()));
            for content in b.body().blocks().filter(|c| c.identifier() == "content") {
                self.body(ctx, content.body(), &inner, &what, problems);
            }
        }
    }

    fn condition(&self, ctx: &Ctx, body: &Body, env: &Env, what: &str, problems: &mut Vec<String>) {
        match holds(ctx, body, env) {
            Ok(true) => {}
            Ok(false) if self.strict => problems.push(format!("{}: {what} fails: {}", self.at, message(ctx, body))),
            Ok(false) => {}
            Err(e) => problems.push(format!("{}: {what}: {e}", self.at)),
        }
    }
}

fn message(ctx: &Ctx, body: &Body) -> String {
    match attribute(body, "error_message").map(|m| ctx.eval(m, &Env::new())) {
        Some(Ok(Value::String(s))) => s,
        _ => "(no message)".into(),
    }
}
