//! A minimal S3 reader (ListObjectsV2 and GET, path style, SigV4) so the
//! harness can audit the bucket on its own, without Skein's code.

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Where and how to reach the bucket.
#[derive(Clone, Debug)]
pub struct S3 {
    /// host:port
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length; the error case cannot happen.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// RFC 3986 encoding as SigV4 wants it (`/` kept only in paths).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC, proleptic Gregorian).
pub fn amz_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

impl S3 {
    /// Signed GET of `/<bucket>/<key>?<query>`.
    async fn get(
        &self,
        client: &reqwest::Client,
        key: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<u8>, String> {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let date_time = amz_date(unix);
        let date = date_time.get(..8).unwrap_or_default();
        let path = if key.is_empty() {
            format!("/{}", uri_encode(&self.bucket, false))
        } else {
            format!(
                "/{}/{}",
                uri_encode(&self.bucket, false),
                uri_encode(key, true)
            )
        };
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        q.sort();
        let canonical_query = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let payload = sha256_hex(b"");
        let canonical = format!(
            "GET\n{path}\n{canonical_query}\nhost:{}\nx-amz-content-sha256:{payload}\nx-amz-date:{date_time}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload}",
            self.endpoint
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let k = hmac(format!("AWS4{}", self.secret).as_bytes(), date);
        let k = hmac(&k, &self.region);
        let k = hmac(&k, "s3");
        let k = hmac(&k, "aws4_request");
        let sig = hex(&hmac(&k, &to_sign));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}",
            self.key_id
        );
        let url = if canonical_query.is_empty() {
            format!("http://{}{path}", self.endpoint)
        } else {
            format!("http://{}{path}?{canonical_query}", self.endpoint)
        };
        let r = client
            .get(url)
            .header("x-amz-date", &date_time)
            .header("x-amz-content-sha256", &payload)
            .header("authorization", auth)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("S3 GET {key}: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| e.to_string())?.to_vec();
        if !status.is_success() {
            return Err(format!(
                "S3 GET {key}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
        Ok(body)
    }

    /// Every object (key, size) in the bucket.
    pub async fn list(&self, client: &reqwest::Client) -> Result<Vec<(String, u64)>, String> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            let mut q = vec![("list-type", "2".to_string())];
            if let Some(t) = &token {
                q.push(("continuation-token", t.clone()));
            }
            let body = self.get(client, "", &q).await?;
            let xml = String::from_utf8_lossy(&body);
            for c in between_all(&xml, "<Contents>", "</Contents>") {
                let key = between_all(c, "<Key>", "</Key>")
                    .first()
                    .map(|k| xml_unescape(k))
                    .ok_or("object without Key")?;
                let size = between_all(c, "<Size>", "</Size>")
                    .first()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.push((key, size));
            }
            let truncated = between_all(&xml, "<IsTruncated>", "</IsTruncated>")
                .first()
                .is_some_and(|t| *t == "true");
            token = between_all(&xml, "<NextContinuationToken>", "</NextContinuationToken>")
                .first()
                .map(|t| xml_unescape(t));
            if !truncated || token.is_none() {
                return Ok(out);
            }
        }
        Err("bucket listing did not end".into())
    }

    /// One object's bytes.
    pub async fn object(&self, client: &reqwest::Client, key: &str) -> Result<Vec<u8>, String> {
        self.get(client, key, &[]).await
    }
}

fn between_all<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = rest.get(i + open.len()..).unwrap_or_default();
        let Some(j) = after.find(close) else { break };
        out.push(after.get(..j).unwrap_or_default());
        rest = after.get(j + close.len()..).unwrap_or_default();
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_encoding() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(uri_encode("a b/c~", false), "a%20b%2Fc~");
        assert_eq!(uri_encode("01AB/chunks/000001", true), "01AB/chunks/000001");
    }

    #[test]
    fn sigv4_signing_key_matches_aws_example() {
        // AWS documentation example for deriving a signing key.
        let k = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215");
        let k = hmac(&k, "us-east-1");
        let k = hmac(&k, "iam");
        let k = hmac(&k, "aws4_request");
        assert_eq!(
            hex(&k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn xml_scanning() {
        let x = "<a><Contents><Key>x&amp;y</Key><Size>3</Size></Contents><Contents><Key>z</Key><Size>4</Size></Contents></a>";
        let cs = between_all(x, "<Contents>", "</Contents>");
        assert_eq!(cs.len(), 2);
        assert_eq!(
            xml_unescape(between_all(cs[0], "<Key>", "</Key>")[0]),
            "x&y"
        );
    }
}
