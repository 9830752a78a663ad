//! How much memory a request needs, checked before it is allocated: an
//! allocation the machine cannot hold aborts the process, so sizes that come
//! from flags, config files or model metadata are checked here first.

use crate::error::{Error, Result};

/// The machine's physical memory in bytes (`MemTotal` of /proc/meminfo), or
/// 1 TiB where that cannot be read.
pub fn physical_bytes() -> u128 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u128>().ok())
        })
        .map_or(1 << 40, |kb| kb * 1024)
}

/// Refuses `floats` f32 values for `what` (already multiplied out in u128,
/// so nothing overflows) when they need more than the machine's memory.
pub fn check_f32s(what: &str, floats: u128) -> Result<()> {
    let need = floats.saturating_mul(4);
    let have = physical_bytes();
    if need > have {
        return Err(Error::config(
            what,
            format!(
                "needs about {} of memory, more than this machine's {}",
                human(need),
                human(have)
            ),
        ));
    }
    Ok(())
}

/// Reads a whole file that must be a regular file no larger than the
/// machine's memory (`/dev/zero` or a FIFO would otherwise be read without
/// end); `what` names the kind of file in errors.
pub fn read_bounded(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
    if !meta.is_file() {
        return Err(Error::format(
            path,
            format!("is not a regular file, so not a {what}"),
        ));
    }
    if meta.len() as u128 > physical_bytes() {
        return Err(Error::format(
            path,
            format!(
                "is {}, more than this machine's memory",
                human(meta.len() as u128)
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))
}

fn human(b: u128) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_past_the_machine_are_refused_with_what_they_need() {
        check_f32s("small", 1 << 20).unwrap();
        let e = check_f32s("model", 784u128 * 1_000_000_000 * 4)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`model`") && e.contains("GiB") && e.contains("more than"),
            "{e}"
        );
    }
}
