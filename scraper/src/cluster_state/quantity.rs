//! Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `1e3`, `2G`) as numbers, and the
//! `resource` and `unit` labels kube-state-metrics gives them.
//!
//! The grammar is the API's (`k8s.io/apimachinery/pkg/api/resource`): a signed decimal
//! number and an optional suffix — binary (`Ki` … `Ei`), decimal (`n`, `u`, `m`, `k`, `M` …
//! `E`) or a decimal exponent (`e3`, `E-2`). A quantity that does not parse gives `None`:
//! its sample is left out rather than written wrong.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The value of `quantity` in base units (cores for CPU, bytes for memory).
pub fn value(quantity: &Quantity) -> Option<f64> {
    let text = quantity.0.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let binary = |power: i32| Some(number * 1024f64.powi(power));
    let exponent = match suffix {
        "Ki" => return binary(1),
        "Mi" => return binary(2),
        "Gi" => return binary(3),
        "Ti" => return binary(4),
        "Pi" => return binary(5),
        "Ei" => return binary(6),
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "" => 0,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        exponent if exponent.starts_with(['e', 'E']) => exponent.get(1..)?.parse::<i32>().ok()?,
        _ => return None,
    };
    // Dividing by a power of ten keeps `3800m` exactly 3.8 (multiplying by 1e-3 does not).
    Some(if exponent < 0 {
        number / 10f64.powi(-exponent)
    } else {
        number * 10f64.powi(exponent)
    })
}

/// The `resource` label of a resource name: characters outside `[a-zA-Z0-9_]` become `_`
/// (`ephemeral-storage` → `ephemeral_storage`, `nvidia.com/gpu` → `nvidia_com_gpu`).
pub fn resource_label(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The `unit` label kube-state-metrics gives a resource: `core` for CPU, `byte` for memory,
/// storage and huge pages, `integer` for everything else (pods, devices, extended resources).
pub fn unit(name: &str) -> &'static str {
    match name {
        "cpu" => "core",
        "memory" | "storage" | "ephemeral-storage" => "byte",
        name if name.starts_with("hugepages-") => "byte",
        _ => "integer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<f64> {
        value(&Quantity(text.to_owned()))
    }

    #[test]
    fn quantities_are_numbers_in_base_units() {
        assert_eq!(parse("100m"), Some(0.1));
        assert_eq!(parse("3800m"), Some(3.8));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("1.5"), Some(1.5));
        assert_eq!(parse("128Mi"), Some(134_217_728.0));
        assert_eq!(parse("1Gi"), Some(1_073_741_824.0));
        assert_eq!(parse("500M"), Some(5e8));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("25E-2"), Some(0.25));
        assert_eq!(parse("250u"), Some(0.00025));
        assert_eq!(parse("-1k"), Some(-1000.0));
    }

    #[test]
    fn malformed_quantities_give_none() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("1Qi"), None);
        assert_eq!(parse("1e"), None);
    }

    #[test]
    fn resources_get_kube_state_metrics_labels() {
        assert_eq!(resource_label("nvidia.com/gpu"), "nvidia_com_gpu");
        assert_eq!(resource_label("ephemeral-storage"), "ephemeral_storage");
        assert_eq!(unit("cpu"), "core");
        assert_eq!(unit("memory"), "byte");
        assert_eq!(unit("hugepages-2Mi"), "byte");
        assert_eq!(unit("pods"), "integer");
    }
}
