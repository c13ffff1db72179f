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
/// process killed mid-write leaves it behind, and the target untouched.
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
