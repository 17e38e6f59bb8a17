//! Reading and writing a [`DataFrame`]: CSV sources (a partition per file
//! or per block of a large file), Parquet sources (a partition per file), a
//! Parquet sink with one file per partition, and
//! gathering the partitions to the client.
//!
//! As in dask, the client only looks at the first file (to learn the
//! schema) and the workers do the reading and writing, so the paths must be
//! visible to the workers (a shared or local file system). Relative paths
//! are made absolute on the client.

use super::{DataFrame, SchemaArg, Table};
use crate::scalar::{tree_reduce, Scalar};
use crate::token::Token;
use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::csv::reader::Format;
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rudask::core::graph::{Arg, TaskGraph, TaskSpec};
use rudask::core::registry::hold;
use rudask::{Error, Result, Task};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows of the first CSV file the schema is inferred from.
const INFER_ROWS: usize = 10_000;

/// Bytes of CSV per partition unless [`CsvOptions::blocksize`] says
/// otherwise.
const DEFAULT_BLOCKSIZE: u64 = 64 << 20;

/// Rows per batch while reading a file (the batches are then concatenated
/// into the partition).
const READ_BATCH: usize = 64 * 1024;

/// How to read CSV files: delimiter, header line, and an explicit schema
/// instead of inferring one.
///
/// ```
/// use arrow::datatypes::{DataType, Field, Schema};
/// use rudask_collections::dataframe::CsvOptions;
/// use std::sync::Arc;
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("name", DataType::Utf8, true),
///     Field::new("balance", DataType::Int64, true),
/// ]));
/// let opts = CsvOptions::new().delimiter(b';').header(false).schema(schema);
/// ```
#[derive(Clone, Debug)]
pub struct CsvOptions {
    delimiter: u8,
    header: bool,
    schema: Option<SchemaRef>,
    blocksize: Option<u64>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            header: true,
            schema: None,
            blocksize: Some(DEFAULT_BLOCKSIZE),
        }
    }
}

impl CsvOptions {
    /// Comma-separated, with a header line, schema inferred.
    ///
    /// ```
    /// let opts = rudask_collections::dataframe::CsvOptions::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The field delimiter (default `b','`).
    ///
    /// ```
    /// let tsv = rudask_collections::dataframe::CsvOptions::new().delimiter(b'\t');
    /// ```
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Whether the first line of each file names the columns (default
    /// true). Without one, inferred columns are named `column_1`, ...
    ///
    /// ```
    /// let opts = rudask_collections::dataframe::CsvOptions::new().header(false);
    /// ```
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Files larger than `bytes` are split into partitions of about
    /// `bytes` each, cut at line ends (default 64 MiB, as in dask); `None`
    /// reads each file as one partition. Splitting assumes that no quoted
    /// value spans lines.
    ///
    /// ```
    /// let opts = rudask_collections::dataframe::CsvOptions::new().blocksize(Some(16 << 20));
    /// ```
    pub fn blocksize(mut self, bytes: Option<u64>) -> Self {
        self.blocksize = bytes;
        self
    }

    /// The schema of the files, instead of inferring it from the first
    /// rows of the first file.
    ///
    /// ```
    /// use arrow::datatypes::{DataType, Field, Schema};
    /// let schema = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
    /// let opts = rudask_collections::dataframe::CsvOptions::new().schema(schema.into());
    /// ```
    pub fn schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }
}

/// The compression of Parquet files written by [`DataFrame::to_parquet_with`].
///
/// ```
/// use rudask_collections::dataframe::ParquetCompression;
/// assert_eq!(ParquetCompression::default(), ParquetCompression::Snappy);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParquetCompression {
    /// Snappy (the default, as in pandas).
    #[default]
    Snappy,
    /// Zstandard at its default level.
    Zstd,
    /// No compression.
    Uncompressed,
}

/// What the workers need to read one CSV file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CsvSpec {
    delimiter: u8,
    header: bool,
    schema: SchemaArg,
}

impl DataFrame {
    /// A frame of the CSV files matching `pattern` (a glob such as
    /// `data/*.csv`), in path order: one partition per file, or per 64 MiB
    /// of a larger file (see [`CsvOptions::blocksize`]). The schema is
    /// inferred on the client from the first rows of the first file; every
    /// file is read with it on the workers. A pattern that matches nothing
    /// or an unreadable first file is an `Error::InvalidArgument`; a bad
    /// row is a task error naming the file and the line.
    ///
    /// ```no_run
    /// use rudask_collections::DataFrame;
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let df = DataFrame::read_csv("/data/accounts-*.csv")?;
    /// let rows: u64 = client.compute(&df.len())?.await?;
    /// # Ok(()) }
    /// ```
    pub fn read_csv(pattern: &str) -> Result<DataFrame> {
        Self::read_csv_with(pattern, &CsvOptions::default())
    }

    /// [`DataFrame::read_csv`] with options (delimiter, header, schema,
    /// blocksize).
    ///
    /// ```no_run
    /// use rudask_collections::dataframe::CsvOptions;
    /// use rudask_collections::DataFrame;
    /// # fn demo() -> rudask::Result<()> {
    /// let df = DataFrame::read_csv_with("/data/*.tsv", &CsvOptions::new().delimiter(b'\t'))?;
    /// # Ok(()) }
    /// ```
    pub fn read_csv_with(pattern: &str, options: &CsvOptions) -> Result<DataFrame> {
        let paths = expand("read_csv", pattern)?;
        let schema = match &options.schema {
            Some(s) => s.clone(),
            None => {
                let first = &paths[0];
                let file = File::open(first).map_err(|e| {
                    Error::InvalidArgument(format!(
                        "read_csv: cannot open {}: {e}",
                        first.display()
                    ))
                })?;
                let (schema, _) = Format::default()
                    .with_header(options.header)
                    .with_delimiter(options.delimiter)
                    .infer_schema(BufReader::new(file), Some(INFER_ROWS))
                    .map_err(|e| {
                        Error::InvalidArgument(format!(
                            "read_csv: cannot infer a schema from {}: {e}",
                            first.display()
                        ))
                    })?;
                Arc::new(schema)
            }
        };
        if schema.fields().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "read_csv: {} has no columns",
                paths[0].display()
            )));
        }
        let spec = CsvSpec {
            delimiter: options.delimiter,
            header: options.header,
            schema: SchemaArg(schema.clone()),
        };
        let mut params = super::table::schema_to_ipc(&schema).expect("a schema encodes");
        params.extend_from_slice(&[options.delimiter, u8::from(options.header)]);
        params.extend_from_slice(&options.blocksize.unwrap_or(0).to_le_bytes());
        let spec = Arg::Value(hold(spec));
        let mut tasks = Vec::new();
        for p in &paths {
            let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let block = options.blocksize.unwrap_or(u64::MAX).max(1);
            for start in (0..size.max(1)).step_by(usize::try_from(block).unwrap_or(usize::MAX)) {
                let end = start.saturating_add(block);
                let range = if start == 0 && end >= size { None } else { Some((start, end)) };
                tasks.push(vec![path_arg(p), spec.clone(), Arg::Value(hold(range))]);
            }
        }
        Ok(source("read_csv", read_csv_partition.id(), &paths, tasks, &params, schema))
    }

    /// A frame of the Parquet files matching `pattern`, one partition per
    /// file in path order, with the schema of the first file (read on the
    /// client). Any compression the parquet crate reads (snappy, zstd,
    /// ...) is fine. A file whose columns differ from the first's is a task
    /// error naming it.
    ///
    /// ```no_run
    /// use rudask_collections::DataFrame;
    /// # fn demo() -> rudask::Result<()> {
    /// let df = DataFrame::read_parquet("/data/accounts/*.parquet")?;
    /// # Ok(()) }
    /// ```
    pub fn read_parquet(pattern: &str) -> Result<DataFrame> {
        let paths = expand("read_parquet", pattern)?;
        let first = &paths[0];
        let file = File::open(first).map_err(|e| {
            Error::InvalidArgument(format!("read_parquet: cannot open {}: {e}", first.display()))
        })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            Error::InvalidArgument(format!(
                "read_parquet: {} is not a readable Parquet file: {e}",
                first.display()
            ))
        })?;
        // File-level metadata (such as the embedded arrow schema) is not
        // part of the frame's schema.
        let schema = Arc::new(Schema::new(builder.schema().fields().clone()));
        let params = super::table::schema_to_ipc(&schema).expect("a schema encodes");
        let arg = Arg::Value(hold(SchemaArg(schema.clone())));
        let tasks = paths.iter().map(|p| vec![path_arg(p), arg.clone()]).collect();
        Ok(source("read_parquet", read_parquet_partition.id(), &paths, tasks, &params, schema))
    }

    /// Writes every partition to `dir/part-NNNNN.parquet` (snappy) on the
    /// workers, creating `dir` if needed; lazy: computing the result writes
    /// the files and gives the number of rows written. Each file is
    /// written to a temporary name and renamed, so a reader never sees a
    /// half-written part. Parts of an earlier, larger write stay.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let rows: u64 = client.compute(&df.to_parquet("/data/out"))?.await?;
    /// # Ok(()) }
    /// ```
    pub fn to_parquet(&self, dir: impl AsRef<Path>) -> Scalar<u64> {
        self.to_parquet_with(dir, ParquetCompression::default())
    }

    /// [`DataFrame::to_parquet`] with the given compression.
    ///
    /// ```no_run
    /// use rudask_collections::dataframe::ParquetCompression;
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let write = df.to_parquet_with("/data/out", ParquetCompression::Zstd);
    /// let rows: u64 = client.compute(&write)?.await?;
    /// # Ok(()) }
    /// ```
    pub fn to_parquet_with(
        &self,
        dir: impl AsRef<Path>,
        compression: ParquetCompression,
    ) -> Scalar<u64> {
        let dir = absolute(dir.as_ref()).to_string_lossy().into_owned();
        let token = Token::of(
            "to_parquet",
            [self.token.bytes().as_slice(), dir.as_bytes(), &[compression as u8]],
        );
        let mut graph = TaskGraph::clone(&self.graph);
        let written = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let key = token.key("to_parquet-part", i);
                graph.insert(TaskSpec {
                    key: key.clone(),
                    func: write_parquet_partition.id().into(),
                    args: vec![
                        Arg::Dep(input.clone()),
                        Arg::Value(hold(dir.clone())),
                        Arg::Value(hold(i as u64)),
                        Arg::Value(hold(compression)),
                    ],
                    options: Default::default(),
                });
                key
            })
            .collect();
        let root = tree_reduce(
            &mut graph,
            token,
            "to_parquet",
            written,
            super::ops::SUM_U64,
            &[],
            super::ops::SPLIT_EVERY,
        );
        Scalar::new(graph, root, self.retain.clone())
    }

    /// Computes the frame and brings its partitions to the client, in
    /// order.
    ///
    /// ```no_run
    /// # async fn demo(client: rudask::Client, df: rudask_collections::DataFrame) -> rudask::Result<()> {
    /// let batches = df.to_batches(&client).await?;
    /// assert_eq!(batches.len(), df.npartitions());
    /// # Ok(()) }
    /// ```
    pub async fn to_batches(&self, client: &rudask::Client) -> Result<Vec<RecordBatch>> {
        let futures = client.submit_graph::<Table>(&self.graph, &self.keys[..])?;
        let tables = client.gather(&futures).await?;
        Ok(tables.into_iter().map(Table::into_inner).collect())
    }
}

/// The files matching `pattern`, sorted and absolute; an error when there
/// are none.
fn expand(op: &str, pattern: &str) -> Result<Vec<PathBuf>> {
    let entries = glob::glob(pattern)
        .map_err(|e| Error::InvalidArgument(format!("{op}: bad pattern {pattern:?}: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::InvalidArgument(format!("{op}: {e}")))?;
        if path.is_file() {
            paths.push(absolute(&path));
        }
    }
    if paths.is_empty() {
        return Err(Error::InvalidArgument(format!("{op}: no file matches {pattern:?}")));
    }
    paths.sort();
    Ok(paths)
}

fn path_arg(path: &Path) -> Arg {
    Arg::Value(hold(path.to_string_lossy().into_owned()))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A frame with one task `func(args..)` per element of `tasks`, reading
/// `paths`. The partitions' names depend on `params` and on each file's
/// path, size and modification time, so a changed file is read again.
fn source(
    op: &str,
    func: &str,
    paths: &[PathBuf],
    tasks: Vec<Vec<Arg>>,
    params: &[u8],
    schema: SchemaRef,
) -> DataFrame {
    let stamps: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            let mut b = p.to_string_lossy().into_owned().into_bytes();
            if let Ok(m) = std::fs::metadata(p) {
                b.extend_from_slice(&m.len().to_le_bytes());
                let modified =
                    m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                b.extend_from_slice(&modified.unwrap_or_default().as_nanos().to_le_bytes());
            }
            b
        })
        .collect();
    let token = Token::of(op, std::iter::once(params).chain(stamps.iter().map(Vec::as_slice)));
    let tasks = tasks.into_iter().map(|args| (func, args));
    let none = rudask::core::collection::Retain::none();
    DataFrame::from_tasks(schema, token, op, TaskGraph::new(), tasks, none)
}

/// Arrow's CSV error with the file named and line numbers counted from 1
/// in the whole file: arrow counts from 0 in parse errors, from 1 in the
/// others, and both from the start of what it was given (`lines_before`
/// lines into the file).
fn csv_error(path: &str, e: &ArrowError, lines_before: usize) -> String {
    let renumber = |m: &str, marker: &str, shift: usize| -> Option<String> {
        let (before, after) = m.split_once(marker)?;
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        let line: usize = after[..digits].parse().ok()?;
        Some(format!("{before}{marker}{}{}", line + shift, &after[digits..]))
    };
    let message = match e {
        ArrowError::ParseError(m) => renumber(m, " at line ", lines_before + 1),
        ArrowError::CsvError(m) => renumber(m, " for line ", lines_before),
        _ => None,
    };
    format!("read_csv: {path}: {}", message.unwrap_or_else(|| e.to_string()))
}

/// The lines of the file that start in `start..end` (a partition of a
/// split file), and the number of lines before them.
fn read_lines(path: &str, start: u64, end: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = BufReader::new(File::open(path)?);
    let mut at = 0;
    if start > 0 {
        // The line that holds byte `start - 1` belongs to the previous range.
        f.seek(SeekFrom::Start(start - 1))?;
        let mut partial = Vec::new();
        at = start - 1 + f.read_until(b'\n', &mut partial)? as u64;
    }
    let mut lines = Vec::new();
    if at < end {
        (&mut f).take(end - at).read_to_end(&mut lines)?;
        if !lines.is_empty() && !lines.ends_with(b"\n") {
            f.read_until(b'\n', &mut lines)?;
        }
    }
    Ok((lines, at))
}

/// The number of lines in the first `bytes` bytes of the file (for error
/// messages of split files).
fn lines_before(path: &str, bytes: u64) -> usize {
    let Ok(file) = File::open(path) else { return 0 };
    let mut reader = BufReader::new(file.take(bytes));
    let mut count = 0;
    loop {
        let n = match reader.fill_buf() {
            Ok([]) | Err(_) => return count,
            Ok(buf) => {
                count += buf.iter().filter(|&&b| b == b'\n').count();
                buf.len()
            }
        };
        reader.consume(n);
    }
}

/// Reads the CSV file at `path` (or the lines starting in `range` of it)
/// into one partition.
#[rudask::task]
fn read_csv_partition(
    path: String,
    spec: CsvSpec,
    range: Option<(u64, u64)>,
) -> Result<Table, String> {
    let schema = spec.schema.0;
    let header = spec.header && range.is_none_or(|(start, _)| start == 0);
    let builder = ReaderBuilder::new(schema.clone())
        .with_header(header)
        .with_delimiter(spec.delimiter)
        .with_batch_size(READ_BATCH);
    let batches = match range {
        None => {
            let file =
                File::open(&path).map_err(|e| format!("read_csv: cannot open {path}: {e}"))?;
            let reader =
                builder.build(BufReader::new(file)).map_err(|e| csv_error(&path, &e, 0))?;
            reader.collect::<Result<Vec<RecordBatch>, _>>().map_err(|e| csv_error(&path, &e, 0))?
        }
        Some((start, end)) => {
            let (lines, at) = read_lines(&path, start, end)
                .map_err(|e| format!("read_csv: cannot read {path}: {e}"))?;
            let fail = |e: &ArrowError| csv_error(&path, e, lines_before(&path, at));
            let reader = builder.build(std::io::Cursor::new(lines)).map_err(|e| fail(&e))?;
            reader.collect::<Result<Vec<RecordBatch>, _>>().map_err(|e| fail(&e))?
        }
    };
    arrow::compute::concat_batches(&schema, &batches)
        .map(Table)
        .map_err(|e| csv_error(&path, &e, 0))
}

/// Reads the Parquet file at `path` into one partition of `schema`.
#[rudask::task]
fn read_parquet_partition(path: String, schema: SchemaArg) -> Result<Table, String> {
    let fail = |e: &dyn std::fmt::Display| format!("read_parquet: {path}: {e}");
    let file = File::open(&path).map_err(|e| format!("read_parquet: cannot open {path}: {e}"))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(READ_BATCH).build())
        .map_err(|e| fail(&e))?;
    let expected = schema.0;
    let found = reader.schema();
    let same = found.fields().len() == expected.fields().len()
        && found
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if !same {
        return Err(fail(&format!(
            "its columns ({}) differ from the first file's ({})",
            found, expected
        )));
    }
    let batches = reader.collect::<Result<Vec<RecordBatch>, _>>().map_err(|e| fail(&e))?;
    let columns = if batches.is_empty() {
        RecordBatch::new_empty(expected.clone()).columns().to_vec()
    } else {
        arrow::compute::concat_batches(&batches[0].schema(), &batches)
            .map_err(|e| fail(&e))?
            .columns()
            .to_vec()
    };
    RecordBatch::try_new(expected, columns).map(Table).map_err(|e| fail(&e))
}

/// Writes `t` to `dir/part-NNNNN.parquet` through a temporary file and
/// returns its number of rows.
#[rudask::task]
fn write_parquet_partition(
    t: Table,
    dir: String,
    index: u64,
    compression: ParquetCompression,
) -> Result<u64, String> {
    let dir = PathBuf::from(dir);
    let fail = |e: &dyn std::fmt::Display| format!("to_parquet: {}: {e}", dir.display());
    std::fs::create_dir_all(&dir).map_err(|e| fail(&e))?;
    let name = format!("part-{index:05}.parquet");
    let tmp = dir.join(format!(".{name}.{}-{:016x}.tmp", std::process::id(), fastrand::u64(..)));
    let write = || -> std::result::Result<(), String> {
        let file = File::create(&tmp).map_err(|e| fail(&e))?;
        let compression = match compression {
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Uncompressed => Compression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder().set_compression(compression).build();
        let mut writer =
            ArrowWriter::try_new(file, t.schema(), Some(props)).map_err(|e| fail(&e))?;
        writer.write(&t).map_err(|e| fail(&e))?;
        writer.into_inner().and_then(|f| f.sync_all().map_err(Into::into)).map_err(|e| fail(&e))?;
        std::fs::rename(&tmp, dir.join(&name)).map_err(|e| fail(&e))
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(t.num_rows() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_file_and_its_line() {
        let path = std::env::temp_dir().join(format!("rudask-csv-{:016x}.csv", fastrand::u64(..)));
        std::fs::write(&path, "name,balance\na,1\nb,2\nc,oops\nd,4\n").unwrap();
        let schema = Arc::new(Schema::new(vec![
            arrow::datatypes::Field::new("name", arrow::datatypes::DataType::Utf8, true),
            arrow::datatypes::Field::new("balance", arrow::datatypes::DataType::Int64, true),
        ]));
        let spec = CsvSpec { delimiter: b',', header: true, schema: SchemaArg(schema) };
        let p = path.to_string_lossy().into_owned();
        let err = read_csv_partition::call(p.clone(), spec.clone(), None).unwrap_err();
        assert!(err.contains(&p) && err.contains("at line 4") && err.contains("oops"), "{err}");
        std::fs::write(&path, "name,balance\na,1\nb,2,3\n").unwrap();
        let err = read_csv_partition::call(p.clone(), spec.clone(), None).unwrap_err();
        assert!(err.contains(&p) && err.contains("line 3"), "{err}");
        std::fs::write(&path, "a,1\nb,x\n").unwrap();
        let headless = CsvSpec { header: false, ..spec };
        let err = read_csv_partition::call(p.clone(), headless, None).unwrap_err();
        assert!(err.contains("at line 2"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn byte_ranges_split_a_file_at_line_ends() {
        let path =
            std::env::temp_dir().join(format!("rudask-lines-{:016x}.csv", fastrand::u64(..)));
        let text: String = (0..200).map(|i| format!("{}\n", "x".repeat(i % 13))).collect();
        std::fs::write(&path, &text).unwrap();
        let p = path.to_string_lossy().into_owned();
        let size = text.len() as u64;
        for block in [1, 2, 7, 13, 64, 1000, size, size + 5] {
            let mut joined = Vec::new();
            let mut start = 0;
            while start < size {
                let (lines, at) = read_lines(&p, start, start + block).unwrap();
                if !lines.is_empty() {
                    assert_eq!(at as usize, joined.len(), "block {block} at {start}");
                    assert_eq!(lines_before(&p, at), text[..at as usize].matches('\n').count());
                }
                joined.extend_from_slice(&lines);
                start += block;
            }
            assert_eq!(String::from_utf8(joined).unwrap(), text, "block {block}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_bad_row_in_a_later_range_gets_its_line_in_the_file() {
        let path =
            std::env::temp_dir().join(format!("rudask-split-{:016x}.csv", fastrand::u64(..)));
        let mut text = String::from("n\n");
        for i in 0..100 {
            text.push_str(if i == 80 { "bad\n" } else { "12345\n" });
        }
        std::fs::write(&path, &text).unwrap();
        let schema = Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
            "n",
            arrow::datatypes::DataType::Int64,
            true,
        )]));
        let spec = CsvSpec { delimiter: b',', header: true, schema: SchemaArg(schema) };
        let p = path.to_string_lossy().into_owned();
        let size = text.len() as u64;
        let mut rows = 0;
        let mut errors = Vec::new();
        for start in (0..size).step_by(100) {
            match read_csv_partition::call(p.clone(), spec.clone(), Some((start, start + 100))) {
                Ok(t) => rows += t.num_rows(),
                Err(e) => errors.push(e),
            }
        }
        // Bytes 400..500 hold the starts of rows 67..=82: that range fails whole.
        assert_eq!(rows, 99 - 16);
        assert_eq!(errors.len(), 1);
        // Line 1 is the header, row i is on line i + 2.
        assert!(errors[0].contains("at line 82") && errors[0].contains(&p), "{}", errors[0]);
        std::fs::remove_file(&path).unwrap();
    }
}
