//! From a discovered target to a scrape target: Prometheus's `PopulateLabels`.
//!
//! Follows Prometheus's scrape/target.go: the target's own labels win over its group's; the
//! job's `job`, `__scrape_interval__`, `__scrape_timeout__`, `__metrics_path__`, `__scheme__`
//! and `__param_<name>` are added where not already set; `relabel_configs` run; a target
//! left without `__address__`, or whose address holds a `/`, is an error; `__meta_*` labels go
//! away; `instance` defaults to the address. Labels starting with `__` stay on the target
//! (they shape its URL) but are not attached to scraped series.

use std::collections::BTreeMap;

use sightline_core::config::ScrapeConfig;
use sightline_core::duration::Duration;
use sightline_core::labels::Labels;
use url::Url;

use crate::relabel::relabel;

const ADDRESS: &str = "__address__";
const SCHEME: &str = "__scheme__";
const METRICS_PATH: &str = "__metrics_path__";
const SCRAPE_INTERVAL: &str = "__scrape_interval__";
const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
const PARAM_PREFIX: &str = "__param_";
const META_PREFIX: &str = "__meta_";

/// A target that survived relabeling, ready to be scraped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    labels: Labels,
    discovered: Labels,
    params: BTreeMap<String, Vec<String>>,
    interval: Duration,
    timeout: Duration,
}

/// Why a discovered target cannot be scraped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Relabeling left no `__address__`.
    #[error("no address")]
    NoAddress,
    /// The address is not `host:port` (it holds a scheme or a path).
    #[error("{0:?} is not a valid hostname")]
    InvalidAddress(String),
    /// `__scrape_interval__` or `__scrape_timeout__` was relabeled into something invalid.
    #[error("error parsing {label}: {value:?} is not a duration greater than 0")]
    BadDuration {
        /// The label that holds it.
        label: &'static str,
        /// Its value.
        value: String,
    },
    /// The timeout is longer than the interval.
    #[error("scrape timeout {timeout} greater than scrape interval {interval}")]
    TimeoutAboveInterval {
        /// The effective timeout.
        timeout: Duration,
        /// The effective interval.
        interval: Duration,
    },
    /// The URL built from the labels does not parse.
    #[error("invalid scrape URL {0:?}")]
    InvalidUrl(String),
}

impl Target {
    /// Applies the job's defaults and `relabel_configs` to a target of a group;
    /// `Ok(None)` when relabeling drops it.
    pub fn populate(
        job: &ScrapeConfig,
        target: &Labels,
        group: &Labels,
    ) -> Result<Option<Target>, TargetError> {
        Target::from_discovered(job, Target::discovered(job, target, group))
    }

    /// A target's labels before relabeling: its group's, its own, and the job's defaults
    /// (`job`, `__scheme__`, `__metrics_path__`, the interval, timeout and params) where not
    /// set — what the targets API shows as `discoveredLabels`, for dropped targets too.
    pub fn discovered(job: &ScrapeConfig, target: &Labels, group: &Labels) -> Labels {
        let mut labels = group.clone();
        for label in target {
            labels.set(&label.name, &label.value);
        }
        let defaults = [
            ("job", job.job_name.clone()),
            (SCRAPE_INTERVAL, job.scrape_interval.to_string()),
            (SCRAPE_TIMEOUT, job.scrape_timeout.to_string()),
            (METRICS_PATH, job.metrics_path.clone()),
            (SCHEME, scheme_name(job).to_owned()),
        ];
        for (name, value) in defaults {
            if labels.get(name).is_none() {
                labels.set(name, &value);
            }
        }
        for (name, values) in &job.params {
            let label = format!("{PARAM_PREFIX}{name}");
            if let (Some(first), None) = (values.first(), labels.get(&label)) {
                labels.set(&label, first);
            }
        }
        labels
    }

    /// Applies the job's `relabel_configs` to [`discovered`](Self::discovered) labels;
    /// `Ok(None)` when relabeling drops the target.
    pub fn from_discovered(
        job: &ScrapeConfig,
        discovered: Labels,
    ) -> Result<Option<Target>, TargetError> {
        let Some(mut labels) = relabel(&discovered, &job.relabel_configs) else {
            return Ok(None);
        };
        let address = labels
            .get(ADDRESS)
            .ok_or(TargetError::NoAddress)?
            .to_owned();
        if address.contains('/') {
            return Err(TargetError::InvalidAddress(address));
        }
        let interval = duration_label(&labels, SCRAPE_INTERVAL)?;
        let timeout = duration_label(&labels, SCRAPE_TIMEOUT)?;
        if timeout > interval {
            return Err(TargetError::TimeoutAboveInterval { timeout, interval });
        }
        labels = labels.without(|name| name.starts_with(META_PREFIX));
        if labels.get("instance").is_none() {
            labels.set("instance", &address);
        }
        Ok(Some(Target {
            labels,
            discovered,
            params: job.params.clone(),
            interval,
            timeout,
        }))
    }

    /// The labels attached to every series scraped from this target (no `__` labels).
    pub fn labels(&self) -> Labels {
        self.labels.without(|name| name.starts_with("__"))
    }

    /// All labels after relabeling, internal ones included.
    pub fn internal_labels(&self) -> &Labels {
        &self.labels
    }

    /// The labels as discovered, before relabeling (`discoveredLabels` in the targets API).
    pub fn discovered_labels(&self) -> &Labels {
        &self.discovered
    }

    /// How often to scrape.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long one scrape may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `scheme://address/metrics_path?params`, where `__param_<name>` labels replace the
    /// first value of the job's `params`.
    pub fn url(&self) -> Result<Url, TargetError> {
        let get = |name| self.labels.get(name).unwrap_or("");
        let text = format!("{}://{}{}", get(SCHEME), get(ADDRESS), get(METRICS_PATH));
        let mut url = Url::parse(&text).map_err(|_| TargetError::InvalidUrl(text.clone()))?;
        let mut params = self.params.clone();
        for label in &self.labels {
            if let Some(name) = label.name.strip_prefix(PARAM_PREFIX) {
                let values = params.entry(name.to_owned()).or_default();
                match values.first_mut() {
                    Some(first) => first.clone_from(&label.value),
                    None => values.push(label.value.clone()),
                }
            }
        }
        if !params.is_empty() {
            let mut query = url.query_pairs_mut();
            for (name, values) in &params {
                for value in values {
                    query.append_pair(name, value);
                }
            }
        }
        Ok(url)
    }
}

fn scheme_name(job: &ScrapeConfig) -> &'static str {
    match job.scheme {
        sightline_core::config::scrape::Scheme::Http => "http",
        sightline_core::config::scrape::Scheme::Https => "https",
    }
}

fn duration_label(labels: &Labels, label: &'static str) -> Result<Duration, TargetError> {
    let value = labels.get(label).unwrap_or("");
    match value.parse::<Duration>() {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(TargetError::BadDuration {
            label,
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sightline_core::config::Config;

    use super::*;
    use crate::discovery::static_groups;

    fn job(yaml: &str) -> ScrapeConfig {
        let text = format!("global: {{scrape_interval: 15s}}\nscrape_configs:\n  - {yaml}\n");
        Config::parse(Path::new("t.yml"), &text)
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    fn targets(job: &ScrapeConfig) -> Vec<Result<Option<Target>, TargetError>> {
        static_groups(job)
            .iter()
            .flat_map(|group| {
                group
                    .targets
                    .iter()
                    .map(move |t| Target::populate(job, t, &group.labels))
            })
            .collect()
    }

    #[test]
    fn static_target_gets_job_instance_and_url() {
        let job = job(
            "{job_name: node, static_configs: [{targets: ['127.0.0.1:9100'], labels: {env: lab}}]}",
        );
        let [Ok(Some(target))] = &targets(&job)[..] else {
            panic!("one target")
        };
        assert_eq!(
            target.labels(),
            Labels::from_pairs([
                ("env", "lab"),
                ("instance", "127.0.0.1:9100"),
                ("job", "node")
            ])
        );
        assert_eq!(
            target.url().unwrap().as_str(),
            "http://127.0.0.1:9100/metrics"
        );
        assert_eq!(
            (target.interval().to_string(), target.timeout().to_string()),
            ("15s".into(), "10s".into())
        );
        assert_eq!(target.discovered_labels().get("__scheme__"), Some("http"));
    }

    #[test]
    fn params_and_param_labels_build_the_query() {
        let job = job(
            "{job_name: probe, scheme: https, metrics_path: /probe, params: {module: [http_2xx], x: [a, b]},
              static_configs: [{targets: ['example.test']}],
              relabel_configs: [{source_labels: [__address__], target_label: __param_target},
                                {target_label: __address__, replacement: '127.0.0.1:9115'}]}",
        );
        let [Ok(Some(target))] = &targets(&job)[..] else {
            panic!("one target")
        };
        assert_eq!(
            target.url().unwrap().as_str(),
            "https://127.0.0.1:9115/probe?module=http_2xx&target=example.test&x=a&x=b"
        );
        assert_eq!(target.labels().get("instance"), Some("127.0.0.1:9115"));
    }

    #[test]
    fn relabeling_drops_or_breaks_targets() {
        let dropped = job(
            "{job_name: j, static_configs: [{targets: ['a:1', 'b:2']}], relabel_configs: [{source_labels: [__address__], regex: 'a:.*', action: drop}]}",
        );
        let results = targets(&dropped);
        assert!(matches!(results[0], Ok(None)));
        assert!(matches!(results[1], Ok(Some(_))));

        let no_address = job(
            "{job_name: j, static_configs: [{targets: ['a:1']}], relabel_configs: [{action: labeldrop, regex: __address__}]}",
        );
        assert_eq!(targets(&no_address)[0], Err(TargetError::NoAddress));

        let with_path = job("{job_name: j, static_configs: [{targets: ['http://a:1/x']}]}");
        assert_eq!(
            targets(&with_path)[0],
            Err(TargetError::InvalidAddress("http://a:1/x".into()))
        );

        let zero = job(
            "{job_name: j, static_configs: [{targets: ['a:1']}], relabel_configs: [{target_label: __scrape_interval__, replacement: 0s}]}",
        );
        assert!(matches!(
            targets(&zero)[0],
            Err(TargetError::BadDuration { .. })
        ));
    }

    #[test]
    fn meta_labels_go_and_own_instance_stays() {
        let job = job(
            "{job_name: j, static_configs: [{targets: ['a:1'], labels: {__meta_x: y, instance: mine}}],
              relabel_configs: [{source_labels: [__meta_x], target_label: from_meta}]}",
        );
        let [Ok(Some(target))] = &targets(&job)[..] else {
            panic!("one target")
        };
        assert_eq!(target.internal_labels().get("__meta_x"), None);
        assert_eq!(target.labels().get("from_meta"), Some("y"));
        assert_eq!(target.labels().get("instance"), Some("mine"));
    }
}
