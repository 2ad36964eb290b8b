//! A tiny typed row builder over polars: every frame has a documented column list
//! ([`ColumnSpec`]) and rows set values by column name, so the produced schema is exactly the
//! documented one (a test checks experiments/SCHEMA.md against these lists).

use polars::prelude::{Column, DataFrame};

use crate::error::AnalysisError;

/// Column types of the frames (every column may be null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// UTF-8 string.
    Str,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// 64-bit float.
    F64,
    /// Boolean.
    Bool,
}

impl Dtype {
    /// Name as written in experiments/SCHEMA.md and as polars/arrow call it.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Str => "str",
            Dtype::U32 => "u32",
            Dtype::U64 => "u64",
            Dtype::F64 => "f64",
            Dtype::Bool => "bool",
        }
    }
}

/// One documented column.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// Column name (units last: `latency_ns_p99`).
    pub name: &'static str,
    /// Type.
    pub dtype: Dtype,
    /// Meaning, for experiments/SCHEMA.md.
    pub doc: &'static str,
}

/// A value of one cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// String.
    Str(String),
    /// u32.
    U32(u32),
    /// u64.
    U64(u64),
    /// f64.
    F64(f64),
    /// bool.
    Bool(bool),
}

impl Value {
    fn dtype(&self) -> Dtype {
        match self {
            Value::Str(_) => Dtype::Str,
            Value::U32(_) => Dtype::U32,
            Value::U64(_) => Dtype::U64,
            Value::F64(_) => Dtype::F64,
            Value::Bool(_) => Dtype::Bool,
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U32(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U64(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// Rows of one frame, checked against its specs.
#[derive(Debug)]
pub struct FrameBuilder {
    frame: &'static str,
    specs: &'static [ColumnSpec],
    rows: Vec<Vec<Option<Value>>>,
}

/// One row being filled; unset cells are null.
#[derive(Debug)]
pub struct Row<'a> {
    builder: &'a FrameBuilder,
    cells: Vec<Option<Value>>,
    error: Option<AnalysisError>,
}

impl Row<'_> {
    /// Sets a column (a name or type not in the spec is an error reported at `push`).
    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self.builder.specs.iter().position(|s| s.name == name) {
            Some(i) if self.builder.specs[i].dtype == value.dtype() => self.cells[i] = Some(value),
            Some(i) => self.fail(
                name,
                &format!(
                    "{:?} value for a {} column",
                    value.dtype(),
                    self.builder.specs[i].dtype.name()
                ),
            ),
            None => self.fail(name, "not a documented column"),
        }
        self
    }

    /// Sets a column if `value` is `Some`.
    pub fn set_opt<V: Into<Value>>(&mut self, name: &str, value: Option<V>) -> &mut Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }

    fn fail(&mut self, column: &str, problem: &str) {
        if self.error.is_none() {
            self.error = Some(AnalysisError::Schema {
                frame: self.builder.frame.to_string(),
                column: column.to_string(),
                problem: problem.to_string(),
            });
        }
    }
}

impl FrameBuilder {
    /// A builder for the frame `frame` with columns `specs`.
    pub fn new(frame: &'static str, specs: &'static [ColumnSpec]) -> FrameBuilder {
        FrameBuilder {
            frame,
            specs,
            rows: Vec::new(),
        }
    }

    /// Fills one row with `fill` and appends it.
    pub fn push(&mut self, fill: impl FnOnce(&mut Row<'_>)) -> Result<(), AnalysisError> {
        let mut row = Row {
            builder: self,
            cells: vec![None; self.specs.len()],
            error: None,
        };
        fill(&mut row);
        if let Some(e) = row.error {
            return Err(e);
        }
        let cells = row.cells;
        self.rows.push(cells);
        Ok(())
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The polars frame, columns in spec order.
    pub fn finish(self) -> Result<DataFrame, AnalysisError> {
        let height = self.rows.len();
        let mut columns = Vec::with_capacity(self.specs.len());
        for (i, spec) in self.specs.iter().enumerate() {
            let cells = self.rows.iter().map(|r| r[i].clone());
            columns.push(column(spec, cells));
        }
        DataFrame::new(height, columns).map_err(|source| AnalysisError::Polars {
            what: format!("build the {} frame", self.frame),
            source,
        })
    }
}

fn column(spec: &ColumnSpec, cells: impl Iterator<Item = Option<Value>>) -> Column {
    let name = spec.name.into();
    match spec.dtype {
        Dtype::Str => Column::new(
            name,
            cells
                .map(|c| match c {
                    Some(Value::Str(s)) => Some(s),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Dtype::U32 => Column::new(
            name,
            cells
                .map(|c| match c {
                    Some(Value::U32(v)) => Some(v),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Dtype::U64 => Column::new(
            name,
            cells
                .map(|c| match c {
                    Some(Value::U64(v)) => Some(v),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Dtype::F64 => Column::new(
            name,
            cells
                .map(|c| match c {
                    Some(Value::F64(v)) => Some(v),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Dtype::Bool => Column::new(
            name,
            cells
                .map(|c| match c {
                    Some(Value::Bool(v)) => Some(v),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
    }
}
