//! Values crossing the SQL port. SQLite dialect everywhere (D1, Spin SQLite,
//! rusqlite), so the same statements run on every platform.

/// A bound parameter. Borrowed so binding costs no copies on our side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Null,
    /// D1 passes numbers through JavaScript: only ±2^53 round-trips exactly,
    /// which covers millisecond timestamps and counters.
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(s)
    }
}
impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Param::Text(s)
    }
}
impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Int(v as i64)
    }
}
impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// A parameter that owns its value, for statements run after the request
/// is gone (see [`crate::Env::defer_writes`]).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedParam {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl OwnedParam {
    pub fn as_param(&self) -> Param<'_> {
        match self {
            OwnedParam::Null => Param::Null,
            OwnedParam::Int(v) => Param::Int(*v),
            OwnedParam::Real(v) => Param::Real(*v),
            OwnedParam::Text(s) => Param::Text(s),
        }
    }
}

/// A statement with owned parameters (see [`crate::Env::defer_writes`]).
/// The text may be built at run time (e.g. a multi-row insert).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedStmt {
    pub sql: std::borrow::Cow<'static, str>,
    pub params: Vec<OwnedParam>,
}

/// One result value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row, columns in `SELECT` order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(pub Vec<Cell>);

impl Row {
    pub fn text(&self, i: usize) -> Option<&str> {
        match self.0.get(i)? {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self, i: usize) -> Option<i64> {
        match *self.0.get(i)? {
            Cell::Int(v) => Some(v),
            // D1 hands every number back as a JS double.
            Cell::Real(v) if v.fract() == 0.0 => Some(v as i64),
            _ => None,
        }
    }
    pub fn take_text(&mut self, i: usize) -> Option<String> {
        match self.0.get_mut(i)? {
            Cell::Text(s) => Some(std::mem::take(s)),
            _ => None,
        }
    }
}

/// One statement of an atomic batch.
#[derive(Debug, Clone, Copy)]
pub struct Stmt<'a> {
    pub sql: &'a str,
    pub params: &'a [Param<'a>],
}

impl<'a> Stmt<'a> {
    pub fn new(sql: &'a str, params: &'a [Param<'a>]) -> Self {
        Stmt { sql, params }
    }
}
