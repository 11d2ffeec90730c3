//! A module's source as the lint reads it: places, statements (with those
//! of `if`/`try` blocks that run at import), decorators, and the names bound
//! at module level (imports, assignments, definitions) with where.

use std::collections::HashMap;

use tree_sitter::Node;

use crate::lint::grammar::fields;
use crate::lint::literal::text;

/// A place in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn of(node: Node<'_>) -> Self {
        let p = node.start_position();
        Pos {
            line: u32::try_from(p.row + 1).unwrap_or(u32::MAX),
            col: u32::try_from(p.column + 1).unwrap_or(u32::MAX),
        }
    }
}

/// What a name is bound to at module level.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'t> {
    /// `name = value` (the value node).
    Value(Node<'t>),
    /// `import a.b as name`: the module.
    Module(&'t str),
    /// `from module import attr as name`.
    From(&'t str, &'t str),
    /// `def name` or `class name` (the definition node).
    Def(Node<'t>),
}

/// Names bound at module level, and what they stand for.
pub struct Scope<'t> {
    pub src: &'t [u8],
    names: HashMap<&'t str, Vec<(usize, Binding<'t>)>>,
}

/// Named children without comments.
pub fn children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect()
}

/// `left + right` of two sequences written in the source, each side read
/// by `read` one level deeper: None when the operator is another or a side
/// cannot be read.
pub fn concatenation<'t, T>(
    scope: &Scope<'t>,
    node: Node<'t>,
    depth: u32,
    read: impl Fn(&Scope<'t>, Node<'t>, u32) -> Option<Vec<T>>,
) -> Option<Vec<T>> {
    let op = node
        .child_by_field_id(fields().operator.get())
        .map(|o| text(o, scope.src));
    if op != Some("+") {
        return None;
    }
    let mut out = read(
        scope,
        node.child_by_field_id(fields().left.get())?,
        depth + 1,
    )?;
    out.extend(read(
        scope,
        node.child_by_field_id(fields().right.get())?,
        depth + 1,
    )?);
    Some(out)
}

/// The statements of a block, with those of `if`, `try`, `with`, `for` and
/// `while` blocks flattened in (they run at import), but not function or
/// class bodies.
pub fn statements(block: Node<'_>) -> Vec<Node<'_>> {
    let mut out = Vec::new();
    for stmt in children(block) {
        match stmt.kind() {
            "if_statement"
            | "try_statement"
            | "with_statement"
            | "for_statement"
            | "while_statement"
            | "elif_clause"
            | "else_clause"
            | "except_clause"
            | "except_group_clause"
            | "finally_clause" => {
                for part in children(stmt) {
                    match part.kind() {
                        "block" => out.extend(statements(part)),
                        "elif_clause"
                        | "else_clause"
                        | "except_clause"
                        | "except_group_clause"
                        | "finally_clause" => {
                            out.extend(statements(part));
                        }
                        _ => {}
                    }
                }
            }
            _ => out.push(stmt),
        }
    }
    out
}

/// The definition inside a `decorated_definition`, or the node itself.
pub fn definition(node: Node<'_>) -> Node<'_> {
    if node.kind() == "decorated_definition" {
        node.child_by_field_id(fields().definition.get())
            .unwrap_or(node)
    } else {
        node
    }
}

/// The decorator expressions of a definition, in source order.
pub fn decorators(node: Node<'_>) -> Vec<Node<'_>> {
    if node.kind() != "decorated_definition" {
        return Vec::new();
    }
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|c| c.kind() == "decorator")
        .filter_map(|d| d.named_child(0))
        .collect()
}

impl<'t> Scope<'t> {
    /// The module-level bindings of a module (or a class body).
    pub fn new(src: &'t [u8], module: Node<'t>) -> Self {
        let mut scope = Scope {
            src,
            names: HashMap::new(),
        };
        for stmt in statements(module) {
            scope.bind_statement(stmt);
        }
        scope
    }

    fn bind(&mut self, name: &'t str, at: usize, binding: Binding<'t>) {
        self.names.entry(name).or_default().push((at, binding));
    }

    fn bind_statement(&mut self, stmt: Node<'t>) {
        let src = self.src;
        let at = stmt.start_byte();
        match stmt.kind() {
            "import_statement" => {
                for name in children(stmt) {
                    match name.kind() {
                        "dotted_name" => {
                            let full = text(name, src);
                            let top = full.split('.').next().unwrap_or(full);
                            self.bind(top, at, Binding::Module(top));
                        }
                        "aliased_import" => {
                            if let (Some(n), Some(a)) = (
                                name.child_by_field_id(fields().name.get()),
                                name.child_by_field_id(fields().alias.get()),
                            ) {
                                self.bind(text(a, src), at, Binding::Module(text(n, src)));
                            }
                        }
                        _ => {}
                    }
                }
            }
            "import_from_statement" => {
                let module = stmt
                    .child_by_field_id(fields().module_name.get())
                    .map_or("", |m| text(m, src));
                let mut cursor = stmt.walk();
                for name in stmt.children_by_field_id(fields().name, &mut cursor) {
                    match name.kind() {
                        "dotted_name" => {
                            let n = text(name, src);
                            self.bind(n, at, Binding::From(module, n));
                        }
                        "aliased_import" => {
                            if let (Some(n), Some(a)) = (
                                name.child_by_field_id(fields().name.get()),
                                name.child_by_field_id(fields().alias.get()),
                            ) {
                                self.bind(text(a, src), at, Binding::From(module, text(n, src)));
                            }
                        }
                        _ => {}
                    }
                }
            }
            "expression_statement" => {
                for expr in children(stmt) {
                    let mut node = expr;
                    // `a = b = value` binds both to the value.
                    let mut targets = Vec::new();
                    while node.kind() == "assignment" {
                        let (Some(left), Some(right)) = (
                            node.child_by_field_id(fields().left.get()),
                            node.child_by_field_id(fields().right.get()),
                        ) else {
                            break;
                        };
                        targets.push(left);
                        node = right;
                    }
                    for target in targets {
                        if target.kind() == "identifier" {
                            self.bind(text(target, src), at, Binding::Value(node));
                        }
                    }
                }
            }
            "decorated_definition" | "function_definition" | "class_definition" => {
                let def = definition(stmt);
                if let Some(name) = def.child_by_field_id(fields().name.get()) {
                    self.bind(text(name, src), at, Binding::Def(def));
                }
            }
            _ => {}
        }
    }

    /// The binding of `name` in effect at byte `at` (the last one before it).
    pub fn lookup(&self, name: &str, at: usize) -> Option<Binding<'t>> {
        let all = self.names.get(name)?;
        all.iter()
            .rev()
            .find(|(pos, _)| *pos < at)
            .or_else(|| all.first())
            .map(|(_, b)| *b)
    }

    /// A node's text on one line, cut at 60 characters (for messages).
    pub fn snippet(&self, node: Node<'_>) -> String {
        let t = text(node, self.src);
        let one_line: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 60 {
            format!("{}...", one_line.chars().take(57).collect::<String>())
        } else {
            one_line
        }
    }
}
