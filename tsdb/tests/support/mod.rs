//! Test support shared by the PromQL test binaries: an in-memory [`Querier`].
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use sightline_core::labels::Labels;
use sightline_core::matcher::Matcher;
use sightline_tsdb::Result as TsdbResult;
use sightline_tsdb::chunk::XorAppender;
use sightline_tsdb::storage::{ChunkMeta, Querier, SeriesChunks};

/// Series stored in memory: the test scripts' TSDB.
#[derive(Default)]
pub struct MemStore {
    /// Samples by series and timestamp.
    pub series: BTreeMap<Labels, BTreeMap<i64, f64>>,
}

impl Querier for MemStore {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> TsdbResult<Vec<SeriesChunks>> {
        let mut out = Vec::new();
        for (labels, samples) in &self.series {
            if !matchers
                .iter()
                .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
            {
                continue;
            }
            let in_range: Vec<(i64, f64)> =
                samples.range(mint..=maxt).map(|(&t, &v)| (t, v)).collect();
            if in_range.is_empty() {
                continue;
            }
            let chunks = in_range
                .chunks(120)
                .map(|part| {
                    let mut app = XorAppender::new();
                    for &(t, v) in part {
                        app.append(t, v).unwrap();
                    }
                    ChunkMeta {
                        min_time: part[0].0,
                        max_time: part[part.len() - 1].0,
                        chunk: app.finish().into(),
                    }
                })
                .collect();
            out.push(SeriesChunks {
                labels: labels.clone(),
                chunks,
            });
        }
        Ok(out)
    }

    fn label_names(&self, _: &[Matcher], _: i64, _: i64) -> TsdbResult<Vec<String>> {
        Ok(Vec::new())
    }

    fn label_values(&self, _: &str, _: &[Matcher], _: i64, _: i64) -> TsdbResult<Vec<String>> {
        Ok(Vec::new())
    }
}

impl MemStore {
    /// Adds samples to a series given as `(name, value)` label pairs.
    pub fn add(&mut self, labels: &[(&str, &str)], samples: &[(i64, f64)]) {
        let series = self
            .series
            .entry(Labels::from_pairs(labels.iter().copied()))
            .or_default();
        for &(t, v) in samples {
            series.insert(t, v);
        }
    }
}
