//! Which name the deriving crate gives sinew-nn (or the `sinew` facade): a small reader
//! of the dependency tables of a `Cargo.toml`.
//!
//! It understands the TOML that can carry a dependency: `[dependencies]`,
//! `[dev-dependencies]`, `[build-dependencies]` and their `[target.'cfg(..)'.*]` forms,
//! dependency tables (`[dependencies.sinew-nn]`), dotted keys (`sinew-nn.workspace =
//! true`), inline tables (also spread over lines), `package = "..."` renames, and
//! `[workspace.dependencies]` (for a `workspace = true` entry renamed there). Strings
//! (basic, literal, multi-line) and comments are skipped properly, so a `[dependencies]`
//! inside a description is not a table. It is not a validating parser: cargo has read
//! the manifest before the macro runs, so anything it cannot make sense of is skipped.
//! (`proc-macro-crate` does this job with `toml_edit`, a heavy dependency for every
//! build of every crate that derives `Module`.)

/// Which table a dependency was declared in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `[dependencies]`, possibly under `[target.X]`
    Normal,
    /// `[dev-dependencies]`, possibly under `[target.X]`
    Dev,
    /// `[build-dependencies]` (not visible to the crate's own code)
    Build,
    /// `[workspace.dependencies]`
    Workspace,
}

/// One dependency: the name the code uses (the key, before `-` becomes `_`), the package
/// it is (`package = ...`, when given) and whether it is inherited from the workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dep {
    pub(crate) key: String,
    pub(crate) package: Option<String>,
    pub(crate) workspace: bool,
    pub(crate) kind: Kind,
}

/// A value, as much of it as matters here.
enum Value {
    Str(String),
    Bool(bool),
    Table(Vec<(Vec<String>, Value)>),
    Other,
}

/// The dependencies declared in `text`, in order (one entry per key and table).
pub(crate) fn dependencies(text: &str) -> Vec<Dep> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let mut deps: Vec<Dep> = Vec::new();
    // the table the following keys belong to
    let mut table: Vec<String> = Vec::new();
    loop {
        p.skip_blank_lines();
        let Some(c) = p.peek() else { break };
        if c == b'[' {
            table = p.header().unwrap_or_default();
            // `[dependencies.NAME]`: a dependency whose fields follow
            if let Some((kind, [name])) = dep_table(&table) {
                deps.push(Dep { key: name.clone(), package: None, workspace: false, kind });
            }
        } else {
            match p.key_value() {
                Some((key, value)) => {
                    let mut full = table.clone();
                    full.extend(key);
                    record(&mut deps, &full, &value);
                }
                None => p.skip_line(),
            }
        }
    }
    deps
}

/// `(kind, the key path after the dependency table)` if `path` is in a dependency table.
fn dep_table(path: &[String]) -> Option<(Kind, &[String])> {
    let kind = |s: &str| match s {
        "dependencies" => Some(Kind::Normal),
        "dev-dependencies" | "dev_dependencies" => Some(Kind::Dev),
        "build-dependencies" | "build_dependencies" => Some(Kind::Build),
        _ => None,
    };
    match path {
        [t, _, d, rest @ ..] if t == "target" => kind(d).map(|k| (k, rest)),
        [w, d, rest @ ..] if w == "workspace" && d == "dependencies" => Some((Kind::Workspace, rest)),
        [d, rest @ ..] => kind(d).map(|k| (k, rest)),
        [] => None,
    }
}

/// Records what `path = value` says about a dependency.
fn record(deps: &mut Vec<Dep>, path: &[String], value: &Value) {
    let Some((kind, rest)) = dep_table(path) else { return };
    let Some((name, field)) = rest.split_first() else { return };
    let index = match deps.iter().rposition(|d| d.key == *name && d.kind == kind) {
        Some(i) => i,
        None => {
            deps.push(Dep { key: name.clone(), package: None, workspace: false, kind });
            deps.len() - 1
        }
    };
    let dep = &mut deps[index];
    match (field, value) {
        // `name = { package = "..", workspace = true, .. }`
        ([], Value::Table(fields)) => {
            for (k, v) in fields {
                set_field(dep, k, v);
            }
        }
        ([], _) => {}
        (field, v) => set_field(dep, field, v),
    }
}

fn set_field(dep: &mut Dep, field: &[String], value: &Value) {
    match (field, value) {
        ([f], Value::Str(s)) if f == "package" => dep.package = Some(s.clone()),
        ([f], Value::Bool(b)) if f == "workspace" => dep.workspace = *b,
        _ => {}
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn starts_with(&self, t: &str) -> bool {
        self.s[self.i..].starts_with(t.as_bytes())
    }

    /// Spaces and tabs.
    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Spaces, newlines and comments.
    fn skip_blank_lines(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.i += 1,
                Some(b'#') => self.skip_line(),
                _ => break,
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == b'\n' {
                break;
            }
        }
    }

    /// `[a.b]` or `[[a.b]]`, with the rest of its line.
    fn header(&mut self) -> Option<Vec<String>> {
        self.i += 1;
        let array = self.peek() == Some(b'[');
        if array {
            self.i += 1;
        }
        self.skip_spaces();
        let key = self.key();
        self.skip_spaces();
        let closed = self.peek() == Some(b']') && (!array || self.s.get(self.i + 1) == Some(&b']'));
        self.skip_line();
        if closed { key } else { None }
    }

    /// A dotted key: bare or quoted parts separated by `.`.
    fn key(&mut self) -> Option<Vec<String>> {
        let mut parts = Vec::new();
        loop {
            self.skip_spaces();
            let part = match self.peek()? {
                b'"' | b'\'' => self.string()?,
                _ => {
                    let start = self.i;
                    while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
                    {
                        self.i += 1;
                    }
                    if self.i == start {
                        return None;
                    }
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
                }
            };
            parts.push(part);
            self.skip_spaces();
            if self.peek() == Some(b'.') {
                self.i += 1;
            } else {
                return Some(parts);
            }
        }
    }

    /// `key = value`; on `None` the caller skips the rest of the line.
    fn key_value(&mut self) -> Option<(Vec<String>, Value)> {
        let key = self.key()?;
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return None;
        }
        self.i += 1;
        self.skip_spaces();
        let value = self.value()?;
        self.skip_spaces();
        if self.peek() == Some(b'#') {
            self.skip_line();
        }
        Some((key, value))
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' | b'\'' => self.string().map(Value::Str),
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                loop {
                    self.skip_blank_lines();
                    match self.peek()? {
                        b'}' => {
                            self.i += 1;
                            return Some(Value::Table(fields));
                        }
                        b',' => self.i += 1,
                        _ => fields.push(self.key_value()?),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                loop {
                    self.skip_blank_lines();
                    match self.peek()? {
                        b']' => {
                            self.i += 1;
                            return Some(Value::Other);
                        }
                        b',' => self.i += 1,
                        _ => {
                            self.value()?;
                        }
                    }
                }
            }
            _ => {
                let start = self.i;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b'\n' | b'\r' | b'#' | b' ' | b'\t')
                ) {
                    self.i += 1;
                }
                Some(match &self.s[start..self.i] {
                    b"true" => Value::Bool(true),
                    b"false" => Value::Bool(false),
                    b"" => return None,
                    _ => Value::Other,
                })
            }
        }
    }

    /// A basic or literal string, single- or multi-line; escapes are kept as written
    /// except `\"` and `\\` (no dependency or package name needs more).
    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        let triple = if quote == b'"' { "\"\"\"" } else { "'''" };
        let multi = self.starts_with(triple);
        self.i += if multi { 3 } else { 1 };
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            if multi && self.starts_with(triple) {
                self.i += 3;
                // up to two more quotes may close a multi-line string
                while self.peek() == Some(quote) {
                    out.push(quote);
                    self.i += 1;
                }
                break;
            }
            if !multi && c == quote {
                self.i += 1;
                break;
            }
            if !multi && c == b'\n' {
                return None;
            }
            if quote == b'"' && c == b'\\' {
                let next = *self.s.get(self.i + 1)?;
                if next == b'"' || next == b'\\' {
                    out.push(next);
                } else {
                    out.extend([c, next]);
                }
                self.i += 2;
                continue;
            }
            out.push(c);
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

/// What the crate names the nn crate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NnPath {
    /// `::KEY`: sinew-nn itself, under the key it is declared with
    Direct(String),
    /// `::KEY::nn`: the `sinew` facade, under its key
    Facade(String),
}

/// The path the crate of `manifest` names sinew-nn by, given `workspace`, the text of
/// its workspace's root manifest (read only for inherited dependencies), or `None` when
/// it depends on neither crate.
///
/// A normal dependency wins over a dev-dependency (the library cannot see the latter,
/// its tests see both), and sinew-nn wins over the facade; build dependencies are not
/// visible to the crate's code and are ignored.
pub(crate) fn nn_path(manifest: &str, workspace: impl FnOnce() -> Option<String>) -> Option<NnPath> {
    let deps = dependencies(manifest);
    let mut workspace = Some(workspace);
    let mut workspace_deps: Option<Vec<Dep>> = None;
    let mut package_of = |d: &Dep| -> String {
        if let Some(p) = &d.package {
            return p.clone();
        }
        if d.workspace {
            let ws = workspace_deps.get_or_insert_with(|| {
                let text = workspace.take().and_then(|f| f()).unwrap_or_default();
                dependencies(&text).into_iter().filter(|d| d.kind == Kind::Workspace).collect()
            });
            if let Some(w) = ws.iter().rev().find(|w| w.key == d.key) {
                return w.package.clone().unwrap_or_else(|| w.key.clone());
            }
        }
        d.key.clone()
    };
    let resolved: Vec<(Kind, String, String)> = deps
        .iter()
        .filter(|d| matches!(d.kind, Kind::Normal | Kind::Dev))
        .map(|d| (d.kind, d.key.replace('-', "_"), package_of(d)))
        .collect();
    for kind in [Kind::Normal, Kind::Dev] {
        let find = |pkg: &str| {
            resolved.iter().find(|(k, _, p)| *k == kind && p == pkg).map(|(_, key, _)| key.clone())
        };
        if let Some(key) = find("sinew-nn") {
            return Some(NnPath::Direct(key));
        }
        if let Some(key) = find("sinew") {
            return Some(NnPath::Facade(key));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(manifest: &str) -> Option<NnPath> {
        nn_path(manifest, || None)
    }

    fn direct(k: &str) -> Option<NnPath> {
        Some(NnPath::Direct(k.into()))
    }

    fn facade(k: &str) -> Option<NnPath> {
        Some(NnPath::Facade(k.into()))
    }

    #[test]
    fn plain_dependencies() {
        assert_eq!(path("[dependencies]\nsinew-nn = \"0.1\"\n"), direct("sinew_nn"));
        assert_eq!(path("[dependencies]\nsinew-nn = { version = \"0.1\" }\n"), direct("sinew_nn"));
        assert_eq!(path("[dependencies]\nsinew-nn.workspace = true\n"), direct("sinew_nn"));
        assert_eq!(path("[dependencies]\nsinew = \"0.1\"\n"), facade("sinew"));
        assert_eq!(path("[dependencies]\n\"sinew\" = \"0.1\"  # quoted key\n"), facade("sinew"));
        assert_eq!(path("[package]\nname = \"x\"\n"), None);
        assert_eq!(path(""), None);
    }

    #[test]
    fn the_derive_crate_is_not_sinew_nn() {
        assert_eq!(path("[dependencies]\nsinew-nn-derive = \"0.1\"\nsinew = \"0.1\"\n"), facade("sinew"));
        assert_eq!(path("[dependencies]\nsinew-nn-derive = \"0.1\"\n"), None);
    }

    #[test]
    fn dependency_tables() {
        let m = "[package]\nname = \"x\"\n\n[dependencies.sinew-nn]\nversion = \"0.1\"\npath = \"../nn\"\n";
        assert_eq!(path(m), direct("sinew_nn"));
        let m = "[dependencies.nn]\npackage = \"sinew-nn\"\nversion = \"0.1\"\n";
        assert_eq!(path(m), direct("nn"));
        let m = "[dependencies.\"sinew\"]\nversion = \"0.1\"\n";
        assert_eq!(path(m), facade("sinew"));
    }

    #[test]
    fn dev_and_target_dependencies() {
        assert_eq!(path("[dev-dependencies]\nsinew-nn = \"0.1\"\n"), direct("sinew_nn"));
        let m = "[target.'cfg(unix)'.dependencies]\nsinew-nn = { version = \"0.1\" }\n";
        assert_eq!(path(m), direct("sinew_nn"));
        let m = "[target.\"cfg(target_os = \\\"linux\\\")\".dependencies.sinew]\nversion = \"0.1\"\n";
        assert_eq!(path(m), facade("sinew"));
        let m = "[target.x86_64-unknown-linux-gnu.dev-dependencies]\nsinew = \"0.1\"\n";
        assert_eq!(path(m), facade("sinew"));
        // a build script's dependency is not the crate's
        assert_eq!(path("[build-dependencies]\nsinew-nn = \"0.1\"\n"), None);
    }

    #[test]
    fn normal_dependencies_win_over_dev_dependencies() {
        // the library sees only `sinew`; its tests see both, and `::sinew::nn` works in both
        let m = "[dev-dependencies]\nsinew-nn = \"0.1\"\n\n[dependencies]\nsinew = \"0.1\"\n";
        assert_eq!(path(m), facade("sinew"));
        let m = "[dependencies]\nsinew = \"0.1\"\nsinew-nn = \"0.1\"\n";
        assert_eq!(path(m), direct("sinew_nn"));
    }

    #[test]
    fn renamed_dependencies() {
        let m = "[dependencies]\nnn = { package = \"sinew-nn\", version = \"0.1\" }\n";
        assert_eq!(path(m), direct("nn"));
        let m = "[dependencies]\nmy-nn = { version = \"0.1\", package = 'sinew-nn' }\n";
        assert_eq!(path(m), direct("my_nn"));
        let m = "[dependencies]\nml = { package = \"sinew\", version = \"0.1\" }\n";
        assert_eq!(path(m), facade("ml"));
        let m = "[dependencies]\nml.package = \"sinew\"\nml.version = \"0.1\"\n";
        assert_eq!(path(m), facade("ml"));
        // a dependency named like the facade that is another package
        let m = "[dependencies]\nsinew = { package = \"not-sinew\", version = \"1\" }\n";
        assert_eq!(path(m), None);
    }

    #[test]
    fn inline_tables_over_lines_and_comments() {
        let m = "[dependencies]\nnn = {\n  version = \"0.1\", # the layers\n  package = \"sinew-nn\",\n  features = [\n    \"a\", # x\n    \"b\",\n  ],\n}\n";
        assert_eq!(path(m), direct("nn"));
        let m = "[dependencies]\n# sinew-nn = \"0.1\"\nsinew = \"0.1\" # not sinew-nn = 1\n";
        assert_eq!(path(m), facade("sinew"));
    }

    #[test]
    fn strings_are_not_tables() {
        let m = "[package]\ndescription = \"\"\"\n[dependencies]\nsinew-nn = \"0.1\"\n\"\"\"\n\n[dependencies]\nsinew = '0.1'\n";
        assert_eq!(path(m), facade("sinew"));
        let m = "[package]\ndescription = '''\n[dependencies]\nsinew-nn = 1\n'''\n";
        assert_eq!(path(m), None);
        let m = "[package]\nname = \"x\"\nkeywords = [\"[dependencies]\", \"sinew-nn = 1\"]\n";
        assert_eq!(path(m), None);
    }

    #[test]
    fn other_tables_end_the_dependencies() {
        let m = "[dependencies]\nserde = \"1\"\n\n[features]\nsinew-nn = []\n\n[[bin]]\nname = \"sinew\"\n";
        assert_eq!(path(m), None);
        let m = "[dependencies.sinew-nn]\nversion = \"0.1\"\n\n[dependencies.sinew]\nversion = \"0.1\"\n";
        assert_eq!(path(m), direct("sinew_nn"));
    }

    #[test]
    fn renames_inherited_from_the_workspace() {
        let ws = "[workspace]\nmembers = [\"a\"]\n\n[workspace.dependencies]\nnn = { package = \"sinew-nn\", version = \"0.1\" }\nsinew = { path = \"crates/sinew\" }\n";
        assert_eq!(nn_path("[dependencies]\nnn.workspace = true\n", || Some(ws.into())), direct("nn"));
        assert_eq!(nn_path("[dependencies]\nnn = { workspace = true }\n", || Some(ws.into())), direct("nn"));
        assert_eq!(nn_path("[dependencies]\nsinew.workspace = true\n", || Some(ws.into())), facade("sinew"));
        // not asked for when nothing is inherited
        assert_eq!(
            nn_path("[dependencies]\nsinew = \"0.1\"\n", || panic!("read the workspace")),
            facade("sinew")
        );
    }
}
