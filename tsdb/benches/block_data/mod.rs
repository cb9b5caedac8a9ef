//! Realistic scrape data for block benchmarks and tests, modelled on
//! `../shared/bench/metrics/targets.py` (profile `bench`): node_exporter-like counters and
//! gauges, kube-state-metrics 0/1 state series, cAdvisor counters, and an instrumented HTTP
//! service per pod (request counters and classic histograms: 10 buckets + `+Inf`, `_sum`,
//! `_count`). Counters grow with a per-series rate, gauges follow a 600-tick wave, values are
//! computed at the scrape's actual (jittered) time as the target does, integer-valued series
//! are truncated to integers and float series keep full `f64` precision.

#![allow(dead_code)] // Shared by the bench and the tests, which each use part of it.
#![allow(clippy::expect_used)] // Test data: a failure is a failed test or bench.

use sightline_core::labels::Labels;
use sightline_tsdb::chunk::XorAppender;
use sightline_tsdb::storage::ChunkMeta;

const WAVE_LEN: usize = 600;

/// splitmix64: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// One synthetic series: value(t) = base + rate·t + amp·wave(phase + ⌊t⌋).
#[derive(Clone, Debug)]
pub struct Model {
    pub labels: Labels,
    pub is_int: bool,
    pub base: f64,
    pub rate: f64,
    pub amp: f64,
    pub phase: usize,
}

impl Model {
    pub fn value(&self, t_secs: f64) -> f64 {
        let tick = t_secs.floor() as usize;
        let wave = (2.0 * std::f64::consts::PI * ((self.phase + tick) % WAVE_LEN) as f64
            / WAVE_LEN as f64)
            .sin();
        let v = self.base + self.rate * t_secs + self.amp * wave;
        if self.is_int { v.trunc() } else { v }
    }
}

fn erf(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26; plenty for bucket shares.
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}

const NAMESPACES: [&str; 8] = [
    "default",
    "kube-system",
    "monitoring",
    "payments",
    "checkout",
    "search",
    "ingest",
    "auth",
];
const HANDLERS: [&str; 8] = [
    "/api/v1/orders",
    "/api/v1/users",
    "/api/v1/cart",
    "/api/v1/search",
    "/healthz",
    "/metrics",
    "/api/v1/login",
    "/api/v2/items",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const LAT_BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The series of one target of about `nseries` series, as targets.py builds them.
pub fn target(idx: usize, nseries: usize, seed: u64) -> Vec<Model> {
    let mut rng = Rng::new(seed ^ (idx as u64).wrapping_mul(0x1234_5678_9abc_def1));
    let instance = format!("127.0.0.1:{}", 19100 + idx);
    let node = format!("node-{idx:03}");
    let mut out: Vec<Model> = Vec::with_capacity(nseries + 64);
    let add = |out: &mut Vec<Model>,
               rng: &mut Rng,
               name: &str,
               pairs: &[(&str, String)],
               is_int: bool,
               base: f64,
               rate: f64,
               amp: f64| {
        let mut all: Vec<(String, String)> = vec![
            ("__name__".into(), name.into()),
            ("job".into(), "bench".into()),
            ("instance".into(), instance.clone()),
        ];
        all.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        out.push(Model {
            labels: Labels::from_pairs(all),
            is_int,
            base,
            rate,
            amp,
            phase: rng.below(WAVE_LEN),
        });
    };
    let modes = [
        ("idle", 0.7),
        ("user", 0.15),
        ("system", 0.08),
        ("iowait", 0.02),
        ("irq", 0.005),
        ("softirq", 0.01),
        ("nice", 0.001),
        ("steal", 0.0),
    ];
    for cpu in 0..8 {
        for (mode, share) in modes {
            let base = rng.uniform(1e4, 1e6);
            let rate = share * rng.uniform(0.8, 1.2);
            add(
                &mut out,
                &mut rng,
                "node_cpu_seconds_total",
                &[("cpu", cpu.to_string()), ("mode", mode.into())],
                false,
                base,
                rate,
                0.0,
            );
        }
    }
    for (name, v) in [
        ("node_memory_MemTotal_bytes", 67_420_000_256.0),
        ("node_memory_MemFree_bytes", 8e9),
        ("node_memory_MemAvailable_bytes", 3e10),
        ("node_memory_Buffers_bytes", 1.2e9),
        ("node_memory_Cached_bytes", 2.1e10),
        ("node_memory_Active_bytes", 2.5e10),
        ("node_memory_Inactive_bytes", 1.4e10),
        ("node_memory_SwapFree_bytes", 0.0),
        ("node_memory_Dirty_bytes", 1.5e6),
        ("node_memory_Slab_bytes", 1.8e9),
    ] {
        let amp = if name.ends_with("Total_bytes") || name.ends_with("SwapFree_bytes") {
            0.0
        } else {
            v * 0.05
        };
        add(&mut out, &mut rng, name, &[], true, v, 0.0, amp);
    }
    for name in ["node_load1", "node_load5", "node_load15"] {
        let base = rng.uniform(1.0, 4.0);
        add(&mut out, &mut rng, name, &[], false, base, 0.0, 0.8);
    }
    for (name, r) in [
        ("node_network_receive_bytes_total", 2e6),
        ("node_network_transmit_bytes_total", 1.5e6),
        ("node_network_receive_packets_total", 3e3),
        ("node_network_transmit_packets_total", 2.5e3),
        ("node_network_receive_errs_total", 0.001),
    ] {
        for dev in ["eth0", "eth1", "lo", "docker0"] {
            let base = if r > 1.0 { rng.uniform(1e6, 1e9) } else { 0.0 };
            let rate = r * rng.uniform(0.5, 1.5);
            add(
                &mut out,
                &mut rng,
                name,
                &[("device", dev.into())],
                true,
                base,
                rate,
                0.0,
            );
        }
    }
    for (name, v) in [
        ("node_filesystem_size_bytes", 5e11),
        ("node_filesystem_avail_bytes", 2e11),
        ("node_filesystem_free_bytes", 2.2e11),
    ] {
        for (dev, fstype, mp) in [
            ("/dev/nvme0n1p1", "ext4", "/"),
            ("/dev/nvme1n1", "xfs", "/var/lib/containerd"),
            ("tmpfs", "tmpfs", "/run"),
        ] {
            let amp = if name.contains("size") { 0.0 } else { v * 0.01 };
            add(
                &mut out,
                &mut rng,
                name,
                &[
                    ("device", dev.into()),
                    ("fstype", fstype.into()),
                    ("mountpoint", mp.into()),
                ],
                true,
                v,
                0.0,
                amp,
            );
        }
    }
    let mut k = 0usize;
    while out.len() < nseries {
        let ns = NAMESPACES[k % NAMESPACES.len()].to_owned();
        let app = format!("app{}", k / 3);
        let pod = format!("{app}-deploy-{:x}", rng.below(1 << 20));
        let base = [("namespace", ns.clone()), ("pod", pod.clone())];
        let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            base.iter().cloned().chain(extra.iter().cloned()).collect()
        };
        add(
            &mut out,
            &mut rng,
            "kube_pod_info",
            &with(&[
                ("node", node.clone()),
                ("host_ip", format!("10.0.{idx}.{}", k % 250)),
                ("pod_ip", format!("10.{idx}.{}.{}", k / 250, k % 250)),
                ("created_by_kind", "ReplicaSet".into()),
                ("created_by_name", format!("{app}-7d9f8")),
            ]),
            true,
            1.0,
            0.0,
            0.0,
        );
        for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
            add(
                &mut out,
                &mut rng,
                "kube_pod_status_phase",
                &with(&[("phase", phase.into())]),
                true,
                f64::from(u8::from(phase == "Running")),
                0.0,
                0.0,
            );
        }
        for cond in ["true", "false", "unknown"] {
            add(
                &mut out,
                &mut rng,
                "kube_pod_status_ready",
                &with(&[("condition", cond.into())]),
                true,
                f64::from(u8::from(cond == "true")),
                0.0,
                0.0,
            );
        }
        let restarts = [0.0, 0.0, 0.0, 0.001][rng.below(4)];
        add(
            &mut out,
            &mut rng,
            "kube_pod_container_status_restarts_total",
            &with(&[("container", app.clone())]),
            true,
            0.0,
            restarts,
            0.0,
        );
        let cpu_req = [0.1, 0.25, 0.5, 1.0][rng.below(4)];
        add(
            &mut out,
            &mut rng,
            "kube_pod_container_resource_requests",
            &with(&[
                ("container", app.clone()),
                ("node", node.clone()),
                ("resource", "cpu".into()),
                ("unit", "core".into()),
            ]),
            false,
            cpu_req,
            0.0,
            0.0,
        );
        let mem_req = [134_217_728.0, 268_435_456.0, 536_870_912.0][rng.below(3)];
        add(
            &mut out,
            &mut rng,
            "kube_pod_container_resource_requests",
            &with(&[
                ("container", app.clone()),
                ("node", node.clone()),
                ("resource", "memory".into()),
                ("unit", "byte".into()),
            ]),
            true,
            mem_req,
            0.0,
            0.0,
        );
        let image = format!("registry.local/{app}:v1.{}", k % 7);
        let cpu_rate = rng.uniform(0.01, 0.8);
        add(
            &mut out,
            &mut rng,
            "container_cpu_usage_seconds_total",
            &with(&[
                ("container", app.clone()),
                ("image", image.clone()),
                ("cpu", "total".into()),
            ]),
            false,
            0.0,
            cpu_rate,
            0.0,
        );
        let (mem_base, mem_amp) = (rng.uniform(5e7, 8e8), rng.uniform(1e6, 3e7));
        add(
            &mut out,
            &mut rng,
            "container_memory_working_set_bytes",
            &with(&[("container", app.clone()), ("image", image)]),
            true,
            mem_base,
            0.0,
            mem_amp,
        );
        for j in 0..2 {
            let handler = HANDLERS[(k + j) % HANDLERS.len()];
            let method = METHODS[(k + handler.len()) % METHODS.len()];
            let svc = [
                ("namespace", ns.clone()),
                ("pod", pod.clone()),
                ("service", app.clone()),
                ("handler", handler.to_owned()),
                ("method", method.to_owned()),
            ];
            for (code, share) in [("200", 0.95), ("404", 0.03), ("500", 0.02)] {
                let rate = rng.uniform(1.0, 50.0) * share;
                let mut labels = svc.to_vec();
                labels.push(("code", code.into()));
                add(
                    &mut out,
                    &mut rng,
                    "http_requests_total",
                    &labels,
                    true,
                    0.0,
                    rate,
                    0.0,
                );
            }
            let total = rng.uniform(1.0, 50.0);
            let median: f64 = rng.uniform(0.02, 0.4);
            let mu = median.ln();
            for bound in LAT_BOUNDS.iter().copied().map(Some).chain([None]) {
                let (cdf, le) = match bound {
                    Some(b) => (
                        0.5 * (1.0 + erf((b.ln() - mu) / std::f64::consts::SQRT_2)),
                        format!("{b}"),
                    ),
                    None => (1.0, "+Inf".to_owned()),
                };
                let mut labels = svc.to_vec();
                labels.push(("le", le));
                add(
                    &mut out,
                    &mut rng,
                    "http_request_duration_seconds_bucket",
                    &labels,
                    true,
                    0.0,
                    total * cdf,
                    0.0,
                );
            }
            add(
                &mut out,
                &mut rng,
                "http_request_duration_seconds_sum",
                &svc,
                false,
                0.0,
                total * median * 1.3,
                0.0,
            );
            add(
                &mut out,
                &mut rng,
                "http_request_duration_seconds_count",
                &svc,
                true,
                0.0,
                total,
                0.0,
            );
        }
        k += 1;
    }
    out
}

/// Scrape timestamps from `start_ms` every `interval_ms`, `count` of them, each late by 0–4 ms
/// (a real scrape loop's jitter).
pub fn scrape_times(start_ms: i64, interval_ms: i64, count: usize, seed: u64) -> Vec<i64> {
    let mut rng = Rng::new(seed);
    (0..count as i64)
        .map(|i| start_ms + i * interval_ms + rng.below(5) as i64)
        .collect()
}

/// The samples of `model` at `times`, with the target started at `t0_ms`.
pub fn samples(model: &Model, times: &[i64], t0_ms: i64) -> Vec<(i64, f64)> {
    times
        .iter()
        .map(|&t| (t, model.value((t - t0_ms) as f64 / 1000.0)))
        .collect()
}

/// Cuts samples into XOR chunks of at most 120 samples, as Prometheus's head does.
pub fn head_chunks(samples: &[(i64, f64)]) -> Vec<ChunkMeta> {
    samples
        .chunks(120)
        .map(|part| {
            let mut appender = XorAppender::new();
            for &(t, v) in part {
                appender.append(t, v).expect("increasing timestamps");
            }
            ChunkMeta {
                min_time: part[0].0,
                max_time: part[part.len() - 1].0,
                chunk: appender.finish().into(),
            }
        })
        .collect()
}

/// One block's worth of series for `models`: samples at `times` restricted to
/// `[mint, maxt)`, as head chunks.
pub fn block_series(
    models: &[Model],
    times: &[i64],
    t0_ms: i64,
    mint: i64,
    maxt: i64,
) -> Vec<(Labels, Vec<ChunkMeta>)> {
    let start = times.partition_point(|&t| t < mint);
    let end = times.partition_point(|&t| t < maxt);
    models
        .iter()
        .map(|m| {
            (
                m.labels.clone(),
                head_chunks(&samples(m, &times[start..end], t0_ms)),
            )
        })
        .collect()
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => total += dir_size(&path),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}
