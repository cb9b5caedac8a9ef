//! E-mail receivers against a local SMTP server that speaks the protocol (EHLO, AUTH PLAIN,
//! MAIL, RCPT, DATA, QUIT) and records the session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failure is a failed test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sightline_alerting::notifier::AlertmanagerConfig;
use sightline_alerting::notifier::alert::PostedAlert;
use sightline_alerting::notifier::service::{Notifier, RetryPolicy};
use sightline_core::labels::Labels;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const T0: i64 = 1_795_000_000_000;

/// Starts an SMTP server offering `extensions` after EHLO; returns its port and the lines
/// it received (commands and message text).
async fn smtp_server(extensions: &'static [&'static str]) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let recorded = lines.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                let mut line = String::new();
                while reader.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let text = line.trim_end().to_owned();
                    line.clear();
                    recorded.lock().unwrap().push(text.clone());
                    if in_data {
                        if text == "." {
                            in_data = false;
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        }
                        continue;
                    }
                    let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let answer: String = match verb.as_str() {
                        "EHLO" => {
                            let mut answer = String::from("250-fake\r\n");
                            for extension in extensions {
                                answer.push_str(&format!("250-{extension}\r\n"));
                            }
                            answer.push_str("250 8BITMIME\r\n");
                            answer
                        }
                        "AUTH" => "235 authenticated\r\n".to_owned(),
                        "DATA" => {
                            in_data = true;
                            "354 go on\r\n".to_owned()
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => "250 ok\r\n".to_owned(),
                    };
                    write.write_all(answer.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (port, lines)
}

fn notifier(port: u16, require_tls: bool) -> Arc<Notifier> {
    let config = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:{port}
  smtp_from: alertmanager@example.org
  smtp_auth_username: mailer
  smtp_auth_password: secret
  smtp_require_tls: {require_tls}
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: mail
    email_configs:
      - to: ops@example.org, oncall@example.org
        text: '{{{{ range .Alerts }}}}{{{{ .Annotations.summary }}}}{{{{ end }}}}'
"#
    );
    let config = AlertmanagerConfig::parse(Path::new("am.yml"), &config).unwrap();
    let retry = RetryPolicy {
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    };
    Arc::new(Notifier::new(config, None, retry).unwrap())
}

fn alert() -> PostedAlert {
    PostedAlert {
        labels: Labels::from_pairs([("alertname", "DiskFull"), ("instance", "nas")]),
        annotations: BTreeMap::from([("summary".to_owned(), "Disk almost full".to_owned())]),
        starts_at: Some(T0),
        ends_at: None,
        generator_url: String::new(),
    }
}

#[tokio::test]
async fn email_goes_through_smtp_with_auth() {
    let (port, lines) = smtp_server(&["AUTH PLAIN LOGIN"]).await;
    let notifier = notifier(port, false);
    notifier.receive(vec![alert()], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].result, Ok(()), "{:#?}", lines.lock().unwrap());
    let lines = lines.lock().unwrap().clone();
    let auth = lines.iter().find(|l| l.starts_with("AUTH PLAIN")).unwrap();
    let credentials = base64::engine::general_purpose::STANDARD
        .decode(auth.trim_start_matches("AUTH PLAIN ").trim())
        .unwrap();
    assert_eq!(credentials, b"\0mailer\0secret");
    assert!(
        lines.iter().any(
            |l| l == "MAIL FROM:<alertmanager@example.org> BODY=8BITMIME"
                || l == "MAIL FROM:<alertmanager@example.org>"
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"RCPT TO:<ops@example.org>".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"RCPT TO:<oncall@example.org>".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"Subject: [FIRING:1] DiskFull".to_owned()),
        "{lines:#?}"
    );
    assert!(lines.contains(&"Disk almost full".to_owned()), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("alertname =3D DiskFull") || l.contains("alertname = DiskFull")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_server_without_starttls_is_an_error_when_tls_is_required() {
    let (port, _lines) = smtp_server(&["AUTH PLAIN"]).await;
    let notifier = notifier(port, true);
    notifier.receive(vec![alert()], T0);
    let deliveries = notifier.flush_and_send(T0).await;
    let error = deliveries[0].result.clone().unwrap_err();
    assert!(error.message.contains("SMTP"), "{error}");
}
