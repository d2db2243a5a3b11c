//! Line connectors: one element per line.
//!
//! - `stdin` (source): each line of standard input is an element (without
//!   its `\n`, or `\r\n`); the source ends at end of input.
//! - `stdout` (sink): each element is written as its payload and `\n`;
//!   written out at every flush (once per batch).
//! - `file` (source or sink): the same for a file at `path` (relative to the
//!   flow file). As a sink it truncates the file when opened, unless
//!   `append = true`.
//!
//! Settings: `path` (file), `content_type` (sources; default `text/plain`),
//! `append` (file sink). Lines are the framing, so a payload holding `\n`
//! reads back as two elements: use the `nats` connector for binary data.
//! Nothing here is redelivered: acknowledging is a no-op and a failed line
//! is lost with an error logged. Outputs are named after `FILE:LINE` (a
//! file replayed within a NATS sink's duplicate window is stored once) or,
//! for stdin, after the run.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::{
    Connector, ConnectorFactory, ConnectorStats, Failed, Fetched, Input, Settings, SinkConnector,
    SourceConnector,
};
use crate::error::{Error, Result};
use crate::interfaces::Interface;
use crate::invoker::Element;

/// Lines of any reader as inputs.
struct LineSource<R> {
    reader: BufReader<R>,
    name: String,
    node: String,
    content_type: String,
    lines: u64,
    acked: u64,
    ended: bool,
    /// The line being read and the lines read and not yet returned: kept
    /// here so that a fetch dropped at a shutdown loses none of them.
    partial: Vec<u8>,
    taken: Vec<Input>,
}

impl<R: AsyncRead + Unpin + Send> LineSource<R> {
    /// Lines of `reader`, named `name` in outputs and errors.
    fn new(reader: R, name: String, settings: &Settings<'_>) -> LineSource<R> {
        LineSource {
            reader: BufReader::new(reader),
            name,
            node: settings.node.to_string(),
            content_type: content_type(settings),
            lines: 0,
            acked: 0,
            ended: false,
            partial: Vec::new(),
            taken: Vec::new(),
        }
    }

    async fn next_line(&mut self) -> Result<Option<Bytes>> {
        // (`read_until` appends what it read before being dropped.)
        self.reader
            .read_until(b'\n', &mut self.partial)
            .await
            .map_err(|e| io_error(&self.node, "line", format!("cannot read {}", self.name), e))?;
        let mut line = std::mem::take(&mut self.partial);
        if line.is_empty() {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(Some(line.into()))
    }
}

#[async_trait]
impl<R: AsyncRead + Unpin + Send> SourceConnector for LineSource<R> {
    async fn fetch(&mut self, max: usize) -> Result<Fetched> {
        if self.ended {
            return Ok(Fetched::Ended);
        }
        let max = max.max(1);
        // Wait for the first line; take more only while they are buffered,
        // so an interactive stdin is not held back until a batch fills.
        while self.taken.len() < max {
            if !self.taken.is_empty() && self.reader.buffer().is_empty() {
                break;
            }
            match self.next_line().await? {
                None => {
                    self.ended = true;
                    break;
                }
                Some(payload) => {
                    self.lines += 1;
                    self.taken.push(Input {
                        element: Element::new(0, self.content_type.clone(), payload),
                        handle: self.lines,
                        origin: format!("{}:{}", self.name, self.lines),
                    });
                }
            }
        }
        Ok(if self.taken.is_empty() {
            Fetched::Ended
        } else {
            Fetched::Inputs(std::mem::take(&mut self.taken))
        })
    }

    async fn ack(&mut self, handles: &[u64]) -> Result<()> {
        // Nothing to tell a file: counted for the report.
        self.acked += handles.len() as u64;
        Ok(())
    }

    async fn fail(&mut self, handle: u64, error: &str) -> Result<Failed> {
        tracing::error!(node = %self.node, line = handle, %error, "line not processed");
        Ok(Failed::DeadLettered)
    }

    async fn release(&mut self, _handles: &[u64]) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> ConnectorStats {
        ConnectorStats {
            acked: self.acked,
            ..ConnectorStats::default()
        }
    }
}

/// Elements as lines of any writer.
struct LineSink<W> {
    writer: W,
    node: String,
    name: String,
    buffer: Vec<u8>,
    buffered: u64,
    stored: u64,
}

#[async_trait]
impl<W: AsyncWrite + Unpin + Send> SinkConnector for LineSink<W> {
    fn accept(&mut self, element: &Element, _id: &str) -> Result<()> {
        self.buffer.extend_from_slice(&element.payload);
        self.buffer.push(b'\n');
        self.buffered += 1;
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.buffer.is_empty() {
            self.writer.write_all(&self.buffer).await.map_err(|e| {
                io_error(&self.node, "line", format!("cannot write {}", self.name), e)
            })?;
            self.buffer.clear();
        }
        self.writer
            .flush()
            .await
            .map_err(|e| io_error(&self.node, "line", format!("cannot write {}", self.name), e))?;
        self.stored += std::mem::take(&mut self.buffered);
        Ok(())
    }

    fn stats(&self) -> ConnectorStats {
        ConnectorStats {
            stored: self.stored,
            ..ConnectorStats::default()
        }
    }
}

fn io_error(node: &str, kind: &str, detail: String, error: std::io::Error) -> Error {
    Error::connector(node, kind, detail, Some(Box::new(error)))
}

fn content_type(settings: &Settings<'_>) -> String {
    settings
        .get("content_type")
        .unwrap_or("text/plain")
        .to_string()
}

/// The `stdin` connector.
pub(crate) struct StdinFactory;

#[async_trait]
impl ConnectorFactory for StdinFactory {
    fn keys(&self) -> &'static [&'static str] {
        &["content_type"]
    }

    fn roles(&self) -> &'static [Interface] {
        &[Interface::Source]
    }

    async fn open(&self, _role: Interface, settings: &Settings<'_>) -> Result<Connector> {
        // Stdin is never read twice: its lines are named per run (the
        // outputs' ids must not collide with an earlier run's).
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_nanos())
            .unwrap_or_default();
        Ok(Connector::Source(Box::new(LineSource::new(
            tokio::io::stdin(),
            format!("stdin@{}.{run}", std::process::id()),
            settings,
        ))))
    }
}

/// The `stdout` connector.
pub(crate) struct StdoutFactory;

#[async_trait]
impl ConnectorFactory for StdoutFactory {
    fn keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn roles(&self) -> &'static [Interface] {
        &[Interface::Sink]
    }

    async fn open(&self, _role: Interface, settings: &Settings<'_>) -> Result<Connector> {
        Ok(Connector::Sink(Box::new(LineSink {
            writer: tokio::io::stdout(),
            node: settings.node.to_string(),
            name: "stdout".into(),
            buffer: Vec::new(),
            buffered: 0,
            stored: 0,
        })))
    }
}

/// The `file` connector.
pub(crate) struct FileFactory;

#[async_trait]
impl ConnectorFactory for FileFactory {
    fn keys(&self) -> &'static [&'static str] {
        &["path", "content_type", "append"]
    }

    fn roles(&self) -> &'static [Interface] {
        &[Interface::Source, Interface::Sink]
    }

    async fn open(&self, role: Interface, settings: &Settings<'_>) -> Result<Connector> {
        let path = settings.required("path")?;
        let node = settings.node;
        let cannot = |what: &str, e| io_error(node, "file", format!("cannot {what} `{path}`"), e);
        if role == Interface::Source {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| cannot("open", e))?;
            return Ok(Connector::Source(Box::new(LineSource::new(
                file,
                path.to_string(),
                settings,
            ))));
        }
        let append = settings.flag("append", false)?;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .await
            .map_err(|e| cannot("create", e))?;
        Ok(Connector::Sink(Box::new(LineSink {
            writer: file,
            node: node.to_string(),
            name: path.to_string(),
            buffer: Vec::new(),
            buffered: 0,
            stored: 0,
        })))
    }
}
