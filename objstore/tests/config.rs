//! objstore.yml parsing: every provider, Thanos key names, clear errors naming the key.

use skein_objstore::config::{BucketLookup, Provider, Sse};
use skein_objstore::{ConfigError, ObjstoreConfig};
use std::time::Duration;

fn err(yaml: &str) -> String {
    ObjstoreConfig::from_yaml(yaml).unwrap_err().to_string()
}

#[test]
fn filesystem_with_prefix() {
    let c = ObjstoreConfig::from_yaml(
        "type: FILESYSTEM\nconfig:\n  directory: /tmp/b\nprefix: /team/a/\n",
    )
    .unwrap();
    assert_eq!(c.prefix.as_deref(), Some("team/a"));
    match c.provider {
        Provider::Filesystem(f) => assert_eq!(f.directory.to_str(), Some("/tmp/b")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn s3_full() {
    let yaml = r#"
type: S3
config:
  bucket: "thanos"
  endpoint: "127.0.0.1:3900"
  region: garage
  access_key: "GK123"
  secret_key: "s3cr3t"
  insecure: true
  bucket_lookup_type: path
  max_retries: 4
  part_size: 67108864
  signature_version2: false
  list_objects_version: ""
  sse_config:
    type: "SSE-KMS"
    kms_key_id: "key-1"
  http_config:
    idle_conn_timeout: 1m30s
    insecure_skip_verify: true
    max_idle_conns: 100
    tls_config:
      server_name: ""
---
type: GCS
"#;
    let c = ObjstoreConfig::from_yaml(yaml).unwrap();
    let Provider::S3(s) = c.provider else {
        panic!()
    };
    assert_eq!(s.bucket, "thanos");
    assert_eq!(s.endpoint, "127.0.0.1:3900");
    assert_eq!(s.region.as_deref(), Some("garage"));
    assert_eq!(s.access_key.as_deref(), Some("GK123"));
    assert_eq!(s.secret_key.as_ref().map(|k| k.0.as_str()), Some("s3cr3t"));
    assert!(format!("{s:?}").contains("<redacted>"));
    assert!(!format!("{s:?}").contains("s3cr3t"));
    assert!(s.insecure);
    assert_eq!(s.bucket_lookup, BucketLookup::Path);
    assert_eq!(s.max_retries, Some(4));
    assert_eq!(s.part_size, Some(64 << 20));
    assert_eq!(
        s.sse,
        Some(Sse::Kms {
            key_id: "key-1".into()
        })
    );
    assert_eq!(s.http.idle_conn_timeout, Some(Duration::from_secs(90)));
    assert!(s.http.insecure_skip_verify);
}

#[test]
fn gcs_and_azure() {
    let c = ObjstoreConfig::from_yaml(
        "type: GCS\nconfig:\n  bucket: b\n  service_account: |-\n    {\"type\": \"service_account\"}\n",
    )
    .unwrap();
    let Provider::Gcs(g) = c.provider else {
        panic!()
    };
    assert_eq!(g.bucket, "b");
    assert!(g.service_account.unwrap().0.contains("service_account"));

    let c = ObjstoreConfig::from_yaml(
        "type: AZURE\nconfig:\n  storage_account: acct\n  storage_account_key: a2V5\n  container: c\n",
    )
    .unwrap();
    let Provider::Azure(a) = c.provider else {
        panic!()
    };
    assert_eq!(a.storage_account, "acct");
    assert_eq!(a.container, "c");
    assert_eq!(a.endpoint, "blob.core.windows.net");

    let c = ObjstoreConfig::from_yaml(
        "type: AZURE\nconfig:\n  container: c\n  storage_connection_string: \"DefaultEndpointsProtocol=https;AccountName=acc2;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn\"\n",
    )
    .unwrap();
    let Provider::Azure(a) = c.provider else {
        panic!()
    };
    assert_eq!(a.storage_account, "acc2");
    assert_eq!(a.endpoint, "blob.core.chinacloudapi.cn");
}

#[test]
fn errors_name_the_key() {
    assert!(matches!(
        ObjstoreConfig::from_yaml("config: {}"),
        Err(ConfigError::MissingType)
    ));
    assert!(err("type: s3\nconfig: {}").contains("unsupported `type: s3`"));
    assert!(err("type: SWIFT\nconfig: {}").contains("SWIFT"));
    assert!(err("type: S3\nconfig:\n  endpoint: x\n").contains("`bucket`"));
    assert!(err("type: S3\nconfig:\n  bucket: x\n").contains("`endpoint`"));
    let e = err("type: S3\nconfig:\n  bucket: x\n  endpoint: host\n  access_key: a\n");
    assert!(e.contains("`secret_key`"), "{e}");
    assert!(
        err("type: S3\nconfig:\n  bucket: x\n  endpoint: host\n  bukket: z\n")
            .contains("unknown key `bukket`")
    );
    assert!(
        err("type: S3\nconfig:\n  bucket: x\n  endpoint: host\n  http_config:\n    bogus: 1\n")
            .contains("`http_config.bogus`")
    );
    assert!(
        err("type: S3\nconfig:\n  bucket: x\n  endpoint: host\n  insecure: maybe\n")
            .contains("`insecure`")
    );
    assert!(
        err("type: S3\nconfig:\n  bucket: x\n  endpoint: host\n  bucket_lookup_type: dns\n")
            .contains("`bucket_lookup_type`")
    );
    assert!(err("type: FILESYSTEM\nconfig: {}\n").contains("`directory`"));
    assert!(err("type: GCS\nconfig: {}\n").contains("`bucket`"));
    assert!(err("type: AZURE\nconfig:\n  container: c\n").contains("`storage_account`"));
    assert!(err("type: AZURE\nconfig:\n  storage_account: a\n").contains("`container`"));
    assert!(err("type: FILESYSTEM\nconfig:\n  directory: /x\nextra: 1\n").contains("`extra`"));
    assert!(err("type: FILESYSTEM\nconfig: [1]\n").contains("mapping"));
    assert!(err(": : :\n  - [").contains("YAML"));
}

#[test]
fn from_file_reports_the_path() {
    let e =
        ObjstoreConfig::from_file(std::path::Path::new("/nonexistent/objstore.yml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/objstore.yml"));
}

#[test]
fn builds_every_provider_offline() {
    // Building a client does not contact the service; a FILESYSTEM bucket creates its directory.
    let dir = tempfile::tempdir().unwrap();
    let fs = ObjstoreConfig::from_yaml(&format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}/sub/dir\nprefix: p\n",
        dir.path().display()
    ))
    .unwrap();
    skein_objstore::build_store(&fs).unwrap();
    assert!(dir.path().join("sub/dir").is_dir());
    for yaml in [
        "type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:1\n  access_key: a\n  secret_key: s\n  insecure: true\n",
        "type: S3\nconfig:\n  bucket: b\n  endpoint: s3.eu-west-1.amazonaws.com\n  access_key: a\n  secret_key: s\n  region: eu-west-1\n",
        "type: AZURE\nconfig:\n  storage_account: acct\n  storage_account_key: a2V5\n  container: c\n",
        "type: GCS\nconfig:\n  bucket: b\n",
    ] {
        let c = ObjstoreConfig::from_yaml(yaml).unwrap();
        skein_objstore::build_store(&c).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    }
}

#[test]
fn bad_credentials_fail_at_build_with_the_provider_named() {
    let c = ObjstoreConfig::from_yaml(
        "type: GCS\nconfig:\n  bucket: b\n  service_account: \"{not json\"\n",
    )
    .unwrap();
    let e = skein_objstore::build_store(&c).unwrap_err().to_string();
    assert!(e.contains("GCS"), "{e}");
}
