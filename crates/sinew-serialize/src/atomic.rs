//! Atomic file replacement: write a temporary file beside the target, flush and sync it,
//! then rename it over the target, so a crash leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, SerializeError};

/// Writes `bytes` to `path` atomically: readers (and a crash or kill at any moment) see
/// either the previous file or the complete new one, never a mix. The temporary file is
/// `.NAME.tmp-PID-N` in the same directory, so the rename stays on one file system; a
/// process killed mid-write leaves it behind, and the target untouched. The next save to
/// the same path removes such leftovers of processes that are no longer running (on Linux,
/// where `/proc` tells), so a run killed again and again does not fill the directory.
///
/// ```
/// use sinew_serialize::write_atomic;
/// let path = std::env::temp_dir().join(format!("doc-atomic-{}.bin", std::process::id()));
/// write_atomic(&path, b"old")?;
/// write_atomic(&path, b"new")?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"new");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
///
/// # Errors
/// [`SerializeError::Io`] naming the step and the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    fn io<'a>(action: &'static str, p: &'a Path) -> impl FnOnce(std::io::Error) -> SerializeError + 'a {
        move |source| SerializeError::Io { action, path: p.to_path_buf(), source }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into());
    // unique per process and per call, so concurrent saves in one process do not collide
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    remove_leftovers(dir, &name);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io("rename into", path))?;
        // make the rename itself durable
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `.NAME.tmp-PID-N` files whose process is gone: temporaries of saves that were
/// killed. Only where `/proc` shows the running processes; a PID still (or again) in use
/// keeps its files, and any error is ignored (a leftover is harmless).
fn remove_leftovers(dir: &Path, name: &str) {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return;
    }
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let Some((pid, counter)) = rest.split_once('-') else { continue };
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if numeric(pid)
            && numeric(counter)
            && pid != std::process::id().to_string()
            && !proc_dir.join(pid).exists()
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Reads a whole file; a failure is [`SerializeError::Io`] naming the path. Every loader
/// of a path reads through it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| SerializeError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}
