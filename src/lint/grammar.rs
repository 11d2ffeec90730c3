//! The Python grammar (tree-sitter-python): a parser, and the grammar's
//! field ids. Whether a parsed file can be checked is `syntax.rs`.

use std::num::NonZeroU16;
use std::sync::LazyLock;

use tree_sitter::Parser;

/// A parser for Python source.
pub fn parser() -> Parser {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("the bundled Python grammar matches tree-sitter");
    parser
}

/// Field ids of the Python grammar, looked up once: `child_by_field_name`
/// searches the grammar's field names on every call, which shows at 50k tests.
pub struct Fields {
    pub alias: NonZeroU16,
    pub argument: NonZeroU16,
    pub arguments: NonZeroU16,
    pub attribute: NonZeroU16,
    pub body: NonZeroU16,
    pub definition: NonZeroU16,
    pub function: NonZeroU16,
    pub left: NonZeroU16,
    pub module_name: NonZeroU16,
    pub name: NonZeroU16,
    pub object: NonZeroU16,
    pub operator: NonZeroU16,
    pub right: NonZeroU16,
    pub superclasses: NonZeroU16,
    pub value: NonZeroU16,
}

static FIELDS: LazyLock<Fields> = LazyLock::new(|| {
    let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
    let id = |name: &str| {
        language
            .field_id_for_name(name)
            .expect("a field of the Python grammar")
    };
    Fields {
        alias: id("alias"),
        argument: id("argument"),
        arguments: id("arguments"),
        attribute: id("attribute"),
        body: id("body"),
        definition: id("definition"),
        function: id("function"),
        left: id("left"),
        module_name: id("module_name"),
        name: id("name"),
        object: id("object"),
        operator: id("operator"),
        right: id("right"),
        superclasses: id("superclasses"),
        value: id("value"),
    }
});

/// The grammar's field ids.
pub fn fields() -> &'static Fields {
    &FIELDS
}
