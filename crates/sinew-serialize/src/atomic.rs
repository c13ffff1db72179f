//! Atomic file replacement: write a temporary file beside the target, flush and sync it,
//! then rename it over the target, so a crash leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, SerializeError};

/// Writes `bytes` to `path` atomically.
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
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
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
