//! Captures every log line of the process in memory, to check what a run wrote.
//!
//! [`LogCapture::install`] sets a process-wide `tracing` subscriber (the `fmt` layer at
//! `TRACE`, no colours, span creations included so span fields are printed too) writing
//! into a buffer, and routes the `log` crate's records into it (fred logs through `log`),
//! at `TRACE` as well. Install it once, at the start of a test binary that needs it: a
//! process has one global subscriber, so it fails if another one was set first.
//!
//! ```no_run
//! let logs = testkit::logs::LogCapture::install().expect("no other subscriber");
//! tracing::info!("hello");
//! assert!(logs.contents().contains("hello"));
//! ```

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_subscriber::fmt::format::FmtSpan;

/// The in-memory log of the process (see the module docs).
#[derive(Debug)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
}

static CAPTURE: OnceLock<Result<LogCapture, String>> = OnceLock::new();

impl LogCapture {
    /// Installs the capture (once per process; later calls return the same one).
    ///
    /// Fails when another global `tracing` subscriber or `log` logger was set first.
    pub fn install() -> Result<&'static LogCapture, String> {
        CAPTURE
            .get_or_init(|| {
                let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
                let sink = Arc::clone(&buffer);
                tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::TRACE)
                    .with_ansi(false)
                    .with_span_events(FmtSpan::NEW)
                    .with_writer(move || Sink(Arc::clone(&sink)))
                    .try_init()
                    .map_err(|e| format!("could not install the log capture: {e}"))?;
                Ok(LogCapture { buffer })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Everything logged so far.
    pub fn contents(&self) -> String {
        let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// How many bytes were logged so far.
    pub fn len(&self) -> usize {
        self.buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing was logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One writer handle: appends to the shared buffer.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
