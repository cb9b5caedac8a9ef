//! deploy/: the plain manifests are valid Kubernetes objects, the Helm chart renders them
//! with its default values, and the configuration they carry passes `sightline check config`.
//!
//! helm is not installable here, so the chart's templates are rendered with Go's
//! text/template (the `gotmpl` crate) and the few Helm functions they use (`toYaml`,
//! `nindent`), with `.Values` from values.yaml and a release named `sightline` in `monitoring`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gotmpl::{Template, TemplateError, Value};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value as Json;

fn deploy_dir() -> PathBuf {
    common::package_path("deploy")
}

fn read_yaml(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap();
    yaml_serde::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Deserializes `object` into the k8s-openapi type of its kind and serializes it back: equal
/// JSON means every field is one Kubernetes knows, spelled and typed as it expects.
fn assert_typed_round_trip(object: &Json, origin: &str) {
    fn round_trip<T>(object: &Json) -> Json
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let typed: T = serde_json::from_value(object.clone()).unwrap();
        serde_json::to_value(typed).unwrap()
    }
    let kind = object["kind"].as_str().unwrap_or_default();
    let back = match kind {
        "Namespace" => round_trip::<Namespace>(object),
        "ServiceAccount" => round_trip::<ServiceAccount>(object),
        "ClusterRole" => round_trip::<ClusterRole>(object),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(object),
        "ConfigMap" => round_trip::<ConfigMap>(object),
        "Service" => round_trip::<Service>(object),
        "Deployment" => round_trip::<Deployment>(object),
        other => panic!("{origin}: no k8s-openapi type for kind {other:?}"),
    };
    assert_eq!(&back, object, "{origin}: fields Kubernetes does not know");
}

/// Objects keyed by `Kind/name`.
type Objects = BTreeMap<String, Json>;

fn insert_object(objects: &mut Objects, object: Json) {
    let key = format!(
        "{}/{}",
        object["kind"].as_str().unwrap(),
        object["metadata"]["name"]
    );
    let key = key.replace('"', "");
    assert!(!objects.contains_key(&key), "two {key} objects");
    objects.insert(key, object);
}

/// The plain manifests that deploy/manifests/kustomization.yaml lists.
fn plain_manifests() -> Objects {
    let dir = deploy_dir().join("manifests");
    let kustomization = read_yaml(&dir.join("kustomization.yaml"));
    let resources = kustomization["resources"].as_array().unwrap();
    let mut objects = Objects::new();
    for resource in resources {
        insert_object(
            &mut objects,
            read_yaml(&dir.join(resource.as_str().unwrap())),
        );
    }
    objects
}

#[test]
fn plain_manifests_are_valid_kubernetes_objects() {
    let manifests = plain_manifests();
    for (kind, object) in &manifests {
        assert_typed_round_trip(object, &format!("deploy/manifests {kind}"));
    }
    let deployment: Deployment =
        serde_json::from_value(manifests["Deployment/sightline"].clone()).unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
    let pod = spec.template.spec.unwrap();
    let container = &pod.containers[0];
    assert!(container.liveness_probe.is_some() && container.readiness_probe.is_some());
    assert!(container.resources.as_ref().unwrap().requests.is_some());
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    let host_paths: Vec<_> = pod
        .volumes
        .unwrap()
        .into_iter()
        .filter_map(|volume| volume.host_path.map(|host_path| host_path.path))
        .collect();
    assert_eq!(
        host_paths,
        ["/var/lib/sightline", "/var/log/pods", "/proc", "/sys", "/"]
    );

    let service: Service = serde_json::from_value(manifests["Service/sightline"].clone()).unwrap();
    let ports: Vec<i32> = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [9090, 3100]);

    let role: ClusterRole =
        serde_json::from_value(manifests["ClusterRole/sightline"].clone()).unwrap();
    for rule in role.rules.unwrap() {
        assert!(
            rule.verbs
                .iter()
                .all(|verb| ["get", "list", "watch"].contains(&verb.as_str())),
            "the ClusterRole only reads: {:?}",
            rule.verbs
        );
    }
}

/// Converts template data between JSON and gotmpl's values.
fn to_template_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap()), Value::Int),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(to_template_value).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.iter()
                .map(|(key, value)| (key.clone(), to_template_value(value)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Uint(u) => Json::from(*u),
        Value::Float(f) => Json::from(*f),
        Value::String(s) => Json::from(s.as_ref()),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => Json::Object(
            map.iter()
                .map(|(key, value)| (key.to_string(), to_json(value)))
                .collect(),
        ),
        Value::Function(_) => panic!("a function is not template data"),
    }
}

/// Renders one chart template as Helm would, with the Helm functions the chart uses.
fn render_template(path: &Path, values: &Json) -> String {
    let source = std::fs::read_to_string(path).unwrap();
    let fail = |message: String| TemplateError::Exec(message);
    let template = Template::new("chart")
        .func("toYaml", move |args| {
            let json = to_json(
                args.first()
                    .ok_or_else(|| fail("toYaml: no argument".into()))?,
            );
            let yaml = yaml_serde::to_string(&json).map_err(|e| fail(e.to_string()))?;
            Ok(Value::from(yaml.trim_end().to_owned()))
        })
        .func("nindent", move |args| {
            let (Some(width), Some(text)) = (args.first().and_then(Value::as_int), args.get(1))
            else {
                return Err(fail("nindent: want a width and a text".into()));
            };
            let pad = " ".repeat(usize::try_from(width).unwrap_or(0));
            let text = text.to_string();
            let indented: Vec<String> = text.lines().map(|line| format!("{pad}{line}")).collect();
            Ok(Value::from(format!("\n{}", indented.join("\n"))))
        })
        .parse(&source)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let data = Value::from(BTreeMap::from([
        ("Values".to_owned(), to_template_value(values)),
        (
            "Release".to_owned(),
            Value::from(BTreeMap::from([
                ("Name".to_owned(), Value::from("sightline")),
                ("Namespace".to_owned(), Value::from("monitoring")),
            ])),
        ),
    ]));
    template
        .execute_to_string(&data)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every chart template rendered with `values` and parsed (a template may render several
/// YAML documents, or none).
fn render_chart(values: &Json) -> Objects {
    use serde::Deserialize;
    let templates = deploy_dir().join("helm/sightline/templates");
    let mut objects = Objects::new();
    for entry in std::fs::read_dir(&templates).unwrap() {
        let path = entry.unwrap().path();
        let rendered = render_template(&path, values);
        for document in yaml_serde::Deserializer::from_str(&rendered) {
            let object = Json::deserialize(document).unwrap_or_else(|error| {
                panic!("{} renders bad YAML: {error}\n{rendered}", path.display())
            });
            if !object.is_null() {
                insert_object(&mut objects, object);
            }
        }
    }
    objects
}

fn default_values() -> Json {
    read_yaml(&deploy_dir().join("helm/sightline/values.yaml"))
}

/// The ConfigMap's `sightline.yaml`, parsed, so that key order and quoting do not matter.
fn config_of(config_map: &Json) -> Json {
    let text = config_map["data"]["sightline.yaml"].as_str().unwrap();
    yaml_serde::from_str(text).unwrap()
}

#[test]
fn chart_defaults_render_the_plain_manifests() {
    let rendered = render_chart(&default_values());
    let mut plain = plain_manifests();
    plain.remove("Namespace/monitoring"); // The chart installs into one; the manifests bring it.
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        plain.keys().collect::<Vec<_>>()
    );
    for (kind, object) in &rendered {
        assert_typed_round_trip(object, &format!("chart {kind}"));
        if kind.starts_with("ConfigMap/") {
            assert_eq!(
                config_of(object),
                config_of(&plain[kind]),
                "ConfigMap config"
            );
            let mut without_data = object.clone();
            without_data["data"] = plain[kind]["data"].clone();
            assert_eq!(&without_data, &plain[kind], "ConfigMap");
        } else {
            assert_eq!(object, &plain[kind], "{kind}");
        }
    }
}

#[test]
fn chart_values_mount_secrets_pin_the_node_and_alias_old_services() {
    let mut values = default_values();
    values["existingSecrets"] = serde_json::json!([{"name": "pushover"}]);
    values["nodeSelector"] = serde_json::json!({"kubernetes.io/hostname": "homelab-1"});
    values["serviceAliases"] = serde_json::json!([{"name": "loki-gateway", "port": 80}]);
    let rendered = render_chart(&values);
    let alias = &rendered["Service/loki-gateway"];
    assert_typed_round_trip(alias, "chart alias Service");
    assert_eq!(alias["spec"]["ports"][0]["port"], 80);
    assert_eq!(
        alias["spec"]["selector"],
        rendered["Service/sightline"]["spec"]["selector"]
    );
    let deployment = &rendered["Deployment/sightline"];
    assert_typed_round_trip(deployment, "chart Deployment with secrets");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "homelab-1");
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().any(|mount| mount["name"] == "secret-pushover"
        && mount["mountPath"] == "/etc/sightline/secrets/pushover"
        && mount["readOnly"] == true));
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|volume| volume["secret"]["secretName"] == "pushover")
    );
}

/// `sightline check config` on a config written out of a deploy artefact.
fn check_config(config: &Json, origin: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sightline.yaml");
    std::fs::write(&path, yaml_serde::to_string(config).unwrap()).unwrap();
    let output = Command::new(common::binary())
        .args(["check", "config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{origin}: sightline check config failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn configs_in_deploy_pass_sightline_check_config() {
    check_config(
        &config_of(&plain_manifests()["ConfigMap/sightline"]),
        "deploy/manifests ConfigMap",
    );
    let release = read_yaml(&deploy_dir().join("flux/helmrelease.yaml"));
    assert_eq!(release["kind"], "HelmRelease");
    check_config(
        &release["spec"]["values"]["config"],
        "deploy/flux HelmRelease values",
    );
}
