//! All of a node's open windows and its watermark as one value, so that a
//! store writes them at once: a batch's states are stored whole or not at
//! all (a crash half way through many writes would leave some of a batch's
//! folds stored and its inputs still to come again, counted twice).
//!
//! The layout, little-endian: a version byte (1); the watermark (a byte 0
//! or 1, then an `i64`); the number of states (`u32`); each state, in key
//! and window order: key length (`u32`) and bytes, start and end (`i64`),
//! state length (`u32`) and bytes.

use super::KeyedWindows;
use crate::window::Window;

const VERSION: u8 = 1;

impl KeyedWindows {
    /// Every open state and the watermark, in the layout above (the same
    /// bytes for the same windows: states are written in order).
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let mut entries: Vec<(&(String, Window), &Vec<u8>)> = self.states.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let size: usize = entries
            .iter()
            .map(|((key, _), state)| 24 + key.len() + state.len())
            .sum();
        let mut out = Vec::with_capacity(14 + size);
        out.push(VERSION);
        match self.watermark {
            Some(watermark) => {
                out.push(1);
                out.extend_from_slice(&watermark.to_le_bytes());
            }
            None => out.extend_from_slice(&[0; 9]),
        }
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for ((key, window), state) in entries {
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&window.start_ms().to_le_bytes());
            out.extend_from_slice(&window.end_ms().to_le_bytes());
            out.extend_from_slice(&(state.len() as u32).to_le_bytes());
            out.extend_from_slice(state);
        }
        out
    }

    /// Takes over what [`snapshot`](Self::snapshot) wrote (after a restart,
    /// or a partition moved here): its states and its watermark, none of
    /// them counted as changes. What cannot be read is named.
    pub(crate) fn restore_snapshot(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.take(1)?[0];
        if version != VERSION {
            return Err(format!(
                "windows stored in layout {version}; this version reads layout {VERSION}"
            ));
        }
        let has_watermark = reader.take(1)?[0] == 1;
        let watermark = reader.i64()?;
        let count = reader.u32()?;
        let mut states = Vec::new();
        for _ in 0..count {
            let key_len = reader.u32()? as usize;
            let key = std::str::from_utf8(reader.take(key_len)?)
                .map_err(|_| format!("a key at byte {} is not UTF-8", reader.at))?
                .to_owned();
            let (start, end) = (reader.i64()?, reader.i64()?);
            let window = Window::new(start, end)
                .ok_or_else(|| format!("window {start}-{end} of key `{key}` is empty"))?;
            let state_len = reader.u32()? as usize;
            states.push((key, window, reader.take(state_len)?.to_vec()));
        }
        if reader.at != bytes.len() {
            return Err(format!(
                "{} bytes after the last state",
                bytes.len() - reader.at
            ));
        }
        for (key, window, state) in states {
            self.restore(&key, window, state);
        }
        if has_watermark {
            self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        }
        Ok(())
    }

    /// Forgets the changes recorded so far; whether there were any (the
    /// flows store whole snapshots, not changes).
    pub(crate) fn clear_changes(&mut self) -> bool {
        let any = !self.changed.is_empty();
        self.changed.clear();
        any
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "cut short: {n} bytes wanted at byte {} of {}",
                self.at,
                self.bytes.len()
            )
        })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::window::{KeyedWindows, Window, WindowFold, WindowSpec};

    struct Count;
    impl WindowFold for Count {
        type Error = std::convert::Infallible;
        fn fold(&mut self, _: &str, _: Window, s: Option<&[u8]>) -> Result<Vec<u8>, Self::Error> {
            Ok(vec![s.map_or(0, |s| s[0]) + 1])
        }
        fn merge(
            &mut self,
            _: &str,
            _: Window,
            a: &[u8],
            b: &[u8],
        ) -> Result<Vec<u8>, Self::Error> {
            Ok(vec![a[0] + b[0]])
        }
    }

    #[test]
    fn a_snapshot_restored_closes_the_same_windows_with_the_same_states() {
        let spec = WindowSpec::sliding(1_000, 500)
            .unwrap()
            .with_allowed_lateness(100);
        let mut windows = KeyedWindows::new(spec);
        for (key, at) in [
            ("a", 100),
            ("b", 700),
            ("a", 1_200),
            ("ü", 1_900),
            ("a", 450),
        ] {
            windows.add(key, at, &mut Count).unwrap();
        }
        windows.advance(600);
        let bytes = windows.snapshot();
        let mut restored = KeyedWindows::new(spec);
        restored.restore_snapshot(&bytes).unwrap();
        assert_eq!(restored.watermark(), Some(600));
        assert_eq!(restored.snapshot(), bytes, "the same bytes again");
        assert!(!restored.clear_changes(), "restoring changes nothing");
        // An element before the restored watermark's closed windows is late
        // in both.
        assert!(restored.add("a", -400, &mut Count).unwrap().is_late());
        assert!(windows.add("a", -400, &mut Count).unwrap().is_late());
        let closed = |w: &mut KeyedWindows| -> Vec<(String, Window, Vec<u8>)> {
            w.close_all()
                .into_iter()
                .map(|c| (c.key().to_owned(), c.window(), c.state().to_vec()))
                .collect()
        };
        assert_eq!(closed(&mut restored), closed(&mut windows));
    }

    #[test]
    fn a_damaged_snapshot_is_refused_by_what_is_wrong() {
        let mut windows = KeyedWindows::new(WindowSpec::tumbling(10).unwrap());
        windows.add("key", 5, &mut Count).unwrap();
        let bytes = windows.snapshot();
        let mut fresh = KeyedWindows::new(WindowSpec::tumbling(10).unwrap());
        let cut = fresh
            .restore_snapshot(&bytes[..bytes.len() - 1])
            .unwrap_err();
        assert!(cut.contains("cut short"), "{cut}");
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(fresh
            .restore_snapshot(&other)
            .unwrap_err()
            .contains("layout 9"));
        assert!(fresh.is_empty(), "nothing taken from a refused snapshot");
    }
}
