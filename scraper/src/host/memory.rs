//! `node_memory_*` from `/proc/meminfo`, as node-exporter's meminfo collector: every field,
//! `_bytes` for the ones given in kB, parentheses turned into `_` (`Active(anon)` is
//! `node_memory_Active_anon_bytes`).

use super::Host;
use super::text::{Exposition, Kind};

pub(super) fn collect(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let meminfo = host.read_proc("meminfo")?;
    for line in meminfo.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(value) = parts.next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let key = key.replace('(', "_").replace(')', "");
        let (name, value) = if parts.next() == Some("kB") {
            (format!("node_memory_{key}_bytes"), value * 1024.0)
        } else {
            (format!("node_memory_{key}"), value)
        };
        out.single(
            &name,
            &format!("Memory information field {key}."),
            Kind::Gauge,
            &[],
            value,
        );
    }
    Ok(())
}
