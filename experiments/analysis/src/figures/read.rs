//! Reading the frames back from parquet: typed column accessors.

use std::path::Path;

use polars::prelude::{DataFrame, DataType};

use crate::error::AnalysisError;
use crate::export::read_parquet;
use crate::schema::FRAMES;

/// The frames of one run as read from `frames/*.parquet`.
#[derive(Debug)]
pub struct FrameSet {
    frames: Vec<(&'static str, DataFrame)>,
}

impl FrameSet {
    /// Reads every frame of [`FRAMES`] from `frames_dir`.
    pub fn read(frames_dir: &Path) -> Result<FrameSet, AnalysisError> {
        let mut frames = Vec::new();
        for (name, _) in FRAMES {
            frames.push((
                name,
                read_parquet(&frames_dir.join(format!("{name}.parquet")))?,
            ));
        }
        Ok(FrameSet { frames })
    }

    /// Frames already in memory (tests, `analyze` followed by `plot`).
    pub fn from_frames(frames: Vec<(&'static str, DataFrame)>) -> FrameSet {
        FrameSet { frames }
    }

    /// The frame called `name`.
    pub fn frame(&self, name: &str) -> Result<&DataFrame, AnalysisError> {
        self.frames
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .ok_or_else(|| schema_error(name, "", "frame missing"))
    }
}

fn schema_error(frame: &str, column: &str, problem: &str) -> AnalysisError {
    AnalysisError::Schema {
        frame: frame.to_string(),
        column: column.to_string(),
        problem: problem.to_string(),
    }
}

fn polars(what: String) -> impl FnOnce(polars::error::PolarsError) -> AnalysisError {
    move |source| AnalysisError::Polars { what, source }
}

/// A column as strings.
pub fn strs(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, AnalysisError> {
    let col = df.column(name).map_err(polars(format!("column {name}")))?;
    let values = col.str().map_err(polars(format!("column {name} as str")))?;
    Ok(values.iter().map(|v| v.map(str::to_string)).collect())
}

/// A numeric column as f64 (integers converted).
pub fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, AnalysisError> {
    let col = df.column(name).map_err(polars(format!("column {name}")))?;
    let cast = col
        .cast(&DataType::Float64)
        .map_err(polars(format!("column {name} as f64")))?;
    let values = cast
        .f64()
        .map_err(polars(format!("column {name} as f64")))?;
    Ok(values.iter().collect())
}

/// A boolean column.
pub fn bools(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>, AnalysisError> {
    let col = df.column(name).map_err(polars(format!("column {name}")))?;
    let values = col
        .bool()
        .map_err(polars(format!("column {name} as bool")))?;
    Ok(values.iter().collect())
}

/// The first value of a string column (for the one-row `run` frame).
pub fn first_str(df: &DataFrame, name: &str) -> Result<String, AnalysisError> {
    Ok(strs(df, name)?
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_default())
}

/// The first value of a numeric column.
pub fn first_f64(df: &DataFrame, name: &str) -> Result<Option<f64>, AnalysisError> {
    Ok(f64s(df, name)?.into_iter().next().flatten())
}

/// The first value of a boolean column.
pub fn first_bool(df: &DataFrame, name: &str) -> Result<bool, AnalysisError> {
    Ok(bools(df, name)?
        .into_iter()
        .next()
        .flatten()
        .unwrap_or(false))
}
