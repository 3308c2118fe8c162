//! What `terraform validate` and the evaluation half of `terraform plan`
//! would say about a module, without a provider (none can be installed
//! here). Parsed with `hcl-rs`, walking the expressions' traversals:
//!
//! - [`undeclared`]: every `var.*`, `local.*`, `module.*` (and the output it
//!   names), `data.*.*`, `<resource type>.<name>`, `each.*` and `count.*`
//!   refers to something declared; every argument of a `module` block is an
//!   input of the module it calls, and every required input is given;
//! - [`plan`] (in `plan.rs`): every local, output, `count`, `for_each`,
//!   `dynamic` block, attribute, variable validation and precondition that
//!   can be evaluated offline is evaluated (`eval.rs`), with the module's
//!   defaults or a caller's inputs; values given at plan and values known
//!   only after apply are told apart (`value.rs`), so a `for_each` key
//!   that would only be known after apply fails here as it would at plan.
//!
//! What stays unchecked: resource and data source argument names and
//! types (the provider's schema), and what a provider computes.

mod eval;
mod plan;
mod value;

pub use plan::{plan, warnings};
#[allow(unused_imports)]
pub use value::{Unknown, Value};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, ObjectKey, TraversalOperator};
use hcl::template::{Directive, Element, Template};
use hcl::{Block, Body};

/// The top-level blocks of one module directory (every `.tf` file).
#[derive(Debug)]
pub struct Module {
    pub dir: PathBuf,
    pub blocks: Vec<Block>,
}

impl Module {
    pub fn load(dir: &Path) -> Result<Module, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "tf"))
            .collect();
        files.sort();
        let mut blocks = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let body: Body = hcl::parse(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            blocks.extend(body.into_blocks());
        }
        Ok(Module { dir: dir.to_path_buf(), blocks })
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.blocks.iter().filter(move |b| b.identifier() == kind)
    }

    /// The block `kind "labels…"`.
    pub fn block(&self, kind: &str, labels: &[&str]) -> Option<&Block> {
        self.blocks
            .iter()
            .filter(|b| b.identifier() == kind)
            .find(|b| b.labels().iter().map(|l| l.as_str()).eq(labels.iter().copied()))
    }

    pub fn variables(&self) -> BTreeMap<String, &Block> {
        self.of_kind("variable").map(|b| (label(b, 0), b)).collect()
    }

    pub fn locals(&self) -> BTreeMap<String, &Expression> {
        self.of_kind("locals").flat_map(|b| b.body().attributes()).map(|a| (a.key().to_string(), a.expr())).collect()
    }

    pub fn outputs(&self) -> BTreeMap<String, &Block> {
        self.of_kind("output").map(|b| (label(b, 0), b)).collect()
    }

    /// The directory a `module` block's local `source` names.
    pub fn child_dir(&self, call: &Block) -> Option<PathBuf> {
        let source = attribute(call.body(), "source")?;
        let Expression::String(source) = source else { return None };
        (source.starts_with("./") || source.starts_with("../")).then(|| self.dir.join(source))
    }
}

pub fn label(block: &Block, i: usize) -> String {
    block.labels().get(i).map(|l| l.as_str().to_string()).unwrap_or_default()
}

pub fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// A module evaluated with given inputs (the rest at their defaults), to
/// read what it declares: a local, or the actions a policy document grants.
pub struct Evaluated(eval::Ctx);

impl Evaluated {
    /// `inputs` as a JSON object of input names to values; an input the
    /// module does not declare, or of the wrong type, is an error.
    pub fn new(dir: &Path, inputs: serde_json::Value) -> Result<Evaluated, String> {
        let inputs = match Value::from_json(&inputs) {
            Value::Map(m) => m,
            other => return Err(format!("inputs must be an object, got a {}", other.kind())),
        };
        let ctx = eval::Ctx::new(Module::load(dir)?, inputs, false);
        if !ctx.input_problems.is_empty() {
            return Err(ctx.input_problems.join("; "));
        }
        Ok(Evaluated(ctx))
    }

    pub fn local(&self, name: &str) -> Result<Value, String> {
        self.0.local(name)
    }

    /// Any expression in the module's scope.
    pub fn eval(&self, expr: &Expression) -> Result<Value, String> {
        self.0.eval(expr, &eval::Env::new())
    }

    /// A local that must be a list of strings (an action list).
    pub fn strings(&self, local: &str) -> Result<BTreeSet<String>, String> {
        match self.local(local)? {
            Value::List(items) | Value::Set(items) => items.iter().map(Value::to_text).collect(),
            other => Err(format!("local.{local} is {}, not a list", other.brief())),
        }
    }

    /// The statements of `data "aws_iam_policy_document" "<name>"` that
    /// apply (static ones, and each instance of a `dynamic "statement"`):
    /// their `sid` and `actions`.
    pub fn policy_actions(&self, name: &str) -> Result<Vec<(String, BTreeSet<String>)>, String> {
        let doc = self
            .0
            .module
            .block("data", &["aws_iam_policy_document", name])
            .ok_or(format!("no policy document {name}"))?;
        let mut out = Vec::new();
        let mut statement = |body: &Body, env: &eval::Env| -> Result<(), String> {
            let text = |key: &str| attribute(body, key).map(|e| self.0.eval(e, env)).transpose();
            let sid = match text("sid")? {
                Some(Value::String(s)) => s,
                None => String::new(),
                Some(other) => return Err(format!("sid {}", other.brief())),
            };
            let actions = match text("actions")? {
                Some(Value::List(items) | Value::Set(items)) => {
                    items.iter().map(|a| a.to_text()).collect::<Result<BTreeSet<_>, _>>()?
                }
                other => return Err(format!("{sid}: actions {:?}", other.map(|o| o.brief()))),
            };
            out.push((sid, actions));
            Ok(())
        };
        for b in doc.body().blocks() {
            match (b.identifier(), label(b, 0).as_str()) {
                ("statement", _) => statement(b.body(), &eval::Env::new())?,
                ("dynamic", "statement") => {
                    let for_each = attribute(b.body(), "for_each").ok_or("a dynamic statement without for_each")?;
                    let pairs = value::elements(self.0.eval(for_each, &eval::Env::new())?)
                        .map_err(|other| format!("a dynamic statement over {}", other.brief()))?;
                    let content = b.body().blocks().find(|c| c.identifier() == "content").ok_or("no content")?;
                    for (k, v) in pairs {
                        let env = eval::bind(
                            &eval::Env::new(),
                            "statement",
                            Value::Map([("key".into(), k), ("value".into(), v)].into()),
                        );
                        statement(content.body(), &env)?;
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// A `module` block's meta-arguments: not inputs of the called module.
const MODULE_META: &[&str] = &["source", "version", "providers", "count", "for_each", "depends_on"];

/// Every reference in the module at `dir` to something not declared, and
/// every `module` block whose arguments do not match the module it calls:
/// one line each, naming the file's directory and the reference.
pub fn undeclared(dir: &Path) -> Result<Vec<String>, String> {
    let module = Module::load(dir)?;
    let mut problems = Vec::new();
    let at = dir.display().to_string();

    // Two declarations of one name are an error in Terraform too.
    let mut seen = BTreeSet::new();
    for b in &module.blocks {
        let name = match b.identifier() {
            "variable" | "output" | "module" => format!("{} {}", b.identifier(), label(b, 0)),
            "resource" | "data" => format!("{} {}.{}", b.identifier(), label(b, 0), label(b, 1)),
            _ => continue,
        };
        if !seen.insert(name.clone()) {
            problems.push(format!("{at}: {name} is declared twice"));
        }
    }
    let mut local_names = BTreeSet::new();
    for a in module.of_kind("locals").flat_map(|b| b.body().attributes()) {
        if !local_names.insert(a.key().to_string()) {
            problems.push(format!("{at}: local.{} is declared twice", a.key()));
        }
    }

    let walker = Walker { module: &module, at: &at };
    for block in &module.blocks {
        let what = eval::block_name(block);
        match block.identifier() {
            "terraform" => {}
            "variable" => {
                for v in block.body().blocks().filter(|b| b.identifier() == "validation") {
                    walker.body(v.body(), &what, &[], &mut problems);
                }
            }
            "resource" | "data" | "module" => {
                let mut bound = Vec::new();
                if attribute(block.body(), "for_each").is_some() {
                    bound.push("each".to_string());
                }
                if attribute(block.body(), "count").is_some() {
                    bound.push("count".to_string());
                }
                walker.body(block.body(), &what, &bound, &mut problems);
                if block.identifier() == "module" {
                    walker.module_call(block, &mut problems);
                }
            }
            _ => walker.body(block.body(), &what, &[], &mut problems),
        }
    }
    Ok(problems)
}

struct Walker<'a> {
    module: &'a Module,
    at: &'a str,
}

impl Walker<'_> {
    fn body(&self, body: &Body, what: &str, bound: &[String], problems: &mut Vec<String>) {
        for a in body.attributes() {
            // Names of attributes, not references; type constraints; provider configurations.
            if matches!(a.key(), "ignore_changes" | "type" | "providers" | "provider" | "iterator") {
                continue;
            }
            self.expr(a.expr(), &format!("{what}.{}", a.key()), bound, problems);
        }
        for b in body.blocks() {
            let inner = format!("{what}.{}", b.identifier());
            match b.identifier() {
                "dynamic" => {
                    let inner = format!("{inner} \"{}\"", label(b, 0));
                    for a in b.body().attributes().filter(|a| a.key() != "iterator") {
                        self.expr(a.expr(), &format!("{inner}.{}", a.key()), bound, problems);
                    }
                    let iterator = match attribute(b.body(), "iterator") {
                        Some(Expression::Variable(v)) => v.as_str().to_string(),
                        _ => label(b, 0),
                    };
                    let mut with = bound.to_vec();
                    with.push(iterator);
                    for content in b.body().blocks() {
                        self.body(content.body(), &inner, &with, problems);
                    }
                }
                "provisioner" | "connection" | "postcondition" => {
                    let mut with = bound.to_vec();
                    with.push("self".to_string());
                    self.body(b.body(), &inner, &with, problems);
                }
                _ => self.body(b.body(), &inner, bound, problems),
            }
        }
    }

    fn expr(&self, e: &Expression, what: &str, bound: &[String], problems: &mut Vec<String>) {
        match e {
            Expression::Array(items) => items.iter().for_each(|i| self.expr(i, what, bound, problems)),
            Expression::Object(obj) => {
                for (k, v) in obj {
                    if let ObjectKey::Expression(k) = k {
                        // A bare word as a key is a name, as in Terraform.
                        if !matches!(k, Expression::Variable(_)) {
                            self.expr(k, what, bound, problems);
                        }
                    }
                    self.expr(v, what, bound, problems);
                }
            }
            Expression::TemplateExpr(t) => match Template::from_expr(t) {
                Ok(t) => self.template(&t, what, bound, problems),
                Err(err) => problems.push(format!("{}: {what}: bad template: {err}", self.at)),
            },
            Expression::Variable(v) => self.reference(v.as_str(), &[], what, bound, problems),
            Expression::Traversal(t) => {
                for op in &t.operators {
                    if let TraversalOperator::Index(i) = op {
                        self.expr(i, what, bound, problems);
                    }
                }
                match &t.expr {
                    Expression::Variable(v) => self.reference(v.as_str(), &t.operators, what, bound, problems),
                    other => self.expr(other, what, bound, problems),
                }
            }
            Expression::FuncCall(f) => f.args.iter().for_each(|a| self.expr(a, what, bound, problems)),
            Expression::Parenthesis(inner) => self.expr(inner, what, bound, problems),
            Expression::Conditional(c) => {
                for e in [&c.cond_expr, &c.true_expr, &c.false_expr] {
                    self.expr(e, what, bound, problems);
                }
            }
            Expression::Operation(op) => match op.as_ref() {
                hcl::expr::Operation::Unary(u) => self.expr(&u.expr, what, bound, problems),
                hcl::expr::Operation::Binary(b) => {
                    self.expr(&b.lhs_expr, what, bound, problems);
                    self.expr(&b.rhs_expr, what, bound, problems);
                }
            },
            Expression::ForExpr(f) => {
                self.expr(&f.collection_expr, what, bound, problems);
                let mut with = bound.to_vec();
                with.extend(f.key_var.iter().map(|k| k.to_string()));
                with.push(f.value_var.to_string());
                for e in f.key_expr.iter().chain(f.cond_expr.iter()).chain([&f.value_expr]) {
                    self.expr(e, what, &with, problems);
                }
            }
            _ => {}
        }
    }

    fn template(&self, t: &Template, what: &str, bound: &[String], problems: &mut Vec<String>) {
        for element in t.elements() {
            match element {
                Element::Literal(_) => {}
                Element::Interpolation(i) => self.expr(&i.expr, what, bound, problems),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        self.expr(&d.cond_expr, what, bound, problems);
                        self.template(&d.true_template, what, bound, problems);
                        if let Some(f) = &d.false_template {
                            self.template(f, what, bound, problems);
                        }
                    }
                    Directive::For(d) => {
                        self.expr(&d.collection_expr, what, bound, problems);
                        let mut with = bound.to_vec();
                        with.extend(d.key_var.iter().map(|k| k.to_string()));
                        with.push(d.value_var.to_string());
                        self.template(&d.template, what, &with, problems);
                    }
                },
            }
        }
    }

    /// One traversal from a root name: is what it names declared?
    fn reference(
        &self,
        root: &str,
        ops: &[TraversalOperator],
        what: &str,
        bound: &[String],
        problems: &mut Vec<String>,
    ) {
        if bound.iter().any(|b| b == root) {
            return;
        }
        let names: Vec<&str> = ops
            .iter()
            .map_while(|op| if let TraversalOperator::GetAttr(n) = op { Some(n.as_str()) } else { None })
            .collect();
        let mut fail = |why: String| problems.push(format!("{}: {what}: {why}", self.at));
        let m = self.module;
        match (root, names.as_slice()) {
            ("var", [name, ..]) if m.variables().contains_key(*name) => {}
            ("var", [name, ..]) => fail(format!("var.{name} is not declared (no variable \"{name}\")")),
            ("local", [name, ..]) if m.locals().contains_key(*name) => {}
            ("local", [name, ..]) => fail(format!("local.{name} is not declared in any locals block")),
            ("module", [name, rest @ ..]) => match m.block("module", &[name]) {
                None => fail(format!("module.{name} is not declared (no module \"{name}\")")),
                Some(call) => {
                    let output = rest.first().filter(|_| {
                        attribute(call.body(), "for_each").is_none() && attribute(call.body(), "count").is_none()
                    });
                    if let (Some(output), Some(dir)) = (output, m.child_dir(call)) {
                        match Module::load(&dir) {
                            Ok(child) if child.outputs().contains_key(*output) => {}
                            Ok(_) => {
                                fail(format!("module.{name}.{output}: {} has no output \"{output}\"", dir.display()))
                            }
                            Err(e) => fail(format!("module.{name}: {e}")),
                        }
                    }
                }
            },
            ("data", [ty, name, ..]) if m.block("data", &[ty, name]).is_some() => {}
            ("data", [ty, name, ..]) => fail(format!("data.{ty}.{name} is not declared (no data \"{ty}\" \"{name}\")")),
            ("path", ["module" | "root" | "cwd"]) | ("terraform", ["workspace"]) => {}
            ("each" | "count" | "self", _) => {
                fail(format!("{root}.* is used where no {} is in scope", if root == "self" { "self" } else { root }))
            }
            (ty, [name, ..]) if m.block("resource", &[ty, name]).is_some() => {}
            (ty, [name, ..]) => fail(format!("{ty}.{name} is not declared (no resource \"{ty}\" \"{name}\")")),
            (root, _) => fail(format!("`{root}` is not a reference Terraform knows")),
        }
    }

    /// A `module` block against the module it calls: only its inputs, and
    /// all of its required ones.
    fn module_call(&self, call: &Block, problems: &mut Vec<String>) {
        let name = label(call, 0);
        let Some(dir) = self.module.child_dir(call) else { return };
        let child = match Module::load(&dir) {
            Ok(child) => child,
            Err(e) => return problems.push(format!("{}: module.{name}: {e}", self.at)),
        };
        let inputs = child.variables();
        let given: BTreeSet<&str> = call.body().attributes().map(|a| a.key()).collect();
        for arg in given.iter().filter(|a| !MODULE_META.contains(a)) {
            if !inputs.contains_key(*arg) {
                problems.push(format!("{}: module.{name}: {arg} is not an input of {}", self.at, dir.display()));
            }
        }
        for (input, block) in &inputs {
            if attribute(block.body(), "default").is_none() && !given.contains(input.as_str()) {
                problems.push(format!(
                    "{}: module.{name}: the required input {input} of {} is not given",
                    self.at,
                    dir.display()
                ));
            }
        }
    }
}
