//! `node_network_{receive,transmit}_*_total` from `/proc/net/dev` (and `rx_nohandler` from
//! `/sys/class/net`), as node-exporter 1.5's netdev collector reports them: every device
//! but the loopback.

use super::Host;
use super::text::{Exposition, Kind};

/// The columns of `/proc/net/dev`, in order.
const COLUMNS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

pub(super) fn collect(host: &Host, out: &mut Exposition) -> std::io::Result<()> {
    let text = host.read_proc("net/dev")?;
    let devices: Vec<(&str, Vec<f64>)> = text
        .lines()
        .skip(2)
        .filter_map(|line| {
            let (device, values) = line.split_once(':')?;
            let device = device.trim();
            let values = values
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            (device != "lo").then_some((device, values))
        })
        .collect();
    for (column, name) in COLUMNS.iter().enumerate() {
        let metric = format!("node_network_{name}_total");
        let (direction, what) = name.split_once('_').unwrap_or((name, ""));
        out.family(
            &metric,
            &format!("Network device statistic {direction} {what}."),
            Kind::Counter,
        );
        for (device, values) in &devices {
            if let Some(value) = values.get(column) {
                out.sample(&metric, &[("device", device)], *value);
            }
        }
    }
    let metric = "node_network_receive_nohandler_total";
    out.family(
        metric,
        "Network device statistic receive nohandler.",
        Kind::Counter,
    );
    for (device, _) in &devices {
        let path = format!("class/net/{device}/statistics/rx_nohandler");
        if let Some(value) = host
            .read_sys(&path)
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            out.sample(metric, &[("device", device)], value);
        }
    }
    Ok(())
}
