//! One exporter per file format behind one trait that returns bytes (hyperfine's design), each
//! tested as bytes or by round trip.

use std::io::Cursor;
use std::path::Path;

use polars::prelude::{
    CsvWriter, DataFrame, ParquetCompression, ParquetReader, ParquetWriter, SerReader, SerWriter,
};

use crate::error::AnalysisError;

/// Turns a frame into the bytes of one file format.
pub trait Exporter {
    /// File extension (`csv`, `parquet`).
    fn extension(&self) -> &'static str;
    /// The file's bytes.
    fn export(&self, frame: &mut DataFrame) -> Result<Vec<u8>, AnalysisError>;
}

/// CSV with a header line, `,` separated, nulls as empty fields, floats in shortest form.
#[derive(Debug, Clone, Copy)]
pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn extension(&self) -> &'static str {
        "csv"
    }

    fn export(&self, frame: &mut DataFrame) -> Result<Vec<u8>, AnalysisError> {
        let mut bytes = Vec::new();
        CsvWriter::new(&mut bytes)
            .include_header(true)
            .finish(frame)
            .map_err(|source| AnalysisError::Polars {
                what: "write CSV".to_string(),
                source,
            })?;
        Ok(bytes)
    }
}

/// Parquet, uncompressed (every reader supports it; the frames are small).
#[derive(Debug, Clone, Copy)]
pub struct ParquetExporter;

impl Exporter for ParquetExporter {
    fn extension(&self) -> &'static str {
        "parquet"
    }

    fn export(&self, frame: &mut DataFrame) -> Result<Vec<u8>, AnalysisError> {
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .with_compression(ParquetCompression::Uncompressed)
            .finish(frame)
            .map_err(|source| AnalysisError::Polars {
                what: "write parquet".to_string(),
                source,
            })?;
        Ok(bytes)
    }
}

/// Reads a parquet file written by [`ParquetExporter`] (or anyone).
pub fn read_parquet(path: &Path) -> Result<DataFrame, AnalysisError> {
    let bytes = std::fs::read(path).map_err(|source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parquet_from_bytes(bytes).map_err(|e| match e {
        AnalysisError::Polars { source, .. } => AnalysisError::Polars {
            what: format!("read {}", path.display()),
            source,
        },
        other => other,
    })
}

/// Reads parquet bytes.
pub fn parquet_from_bytes(bytes: Vec<u8>) -> Result<DataFrame, AnalysisError> {
    ParquetReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|source| AnalysisError::Polars {
            what: "read parquet".to_string(),
            source,
        })
}
