//! JSON of the Prometheus HTTP API, written by hand so numbers look exactly
//! like Prometheus's: values as strings formatted like Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)`, timestamps as seconds with the
//! milliseconds as up to three decimals.

use std::fmt::Write as _;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use skein_promql::{Labels, Sample, Value};

/// A sample value the way Prometheus writes it (without quotes).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's Display is the shortest round-tripping decimal without an
        // exponent, as Go's 'f' format with precision -1.
        format!("{v}")
    }
}

/// A millisecond timestamp of a vector or matrix point as JSON seconds,
/// as Prometheus writes them: `1435781451.781`, `4`, `1.050`.
pub fn format_ts(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        format!("{sign}{secs}")
    } else {
        format!("{sign}{secs}.{frac:03}")
    }
}

/// A millisecond timestamp of a scalar or string result as JSON seconds:
/// Prometheus writes these as plain floats (`1.5`, `4`, `1435781451.781`).
pub fn format_ts_float(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A label set as a JSON object.
pub fn labels_json(ls: &Labels) -> String {
    let mut out = String::from("{");
    for (i, l) in ls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_str(&l.name), json_str(&l.value));
    }
    out.push('}');
    out
}

/// A list of strings as a JSON array.
pub fn strings_json(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

fn point(out: &mut String, t: i64, v: &str) {
    let _ = write!(out, "[{},{}]", format_ts(t), json_str(v));
}

fn float_point(out: &mut String, t: i64, v: &str) {
    let _ = write!(out, "[{},{}]", format_ts_float(t), json_str(v));
}

fn samples_json(out: &mut String, samples: &[Sample]) {
    out.push('[');
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        point(out, s.t, &format_float(s.v));
    }
    out.push(']');
}

/// `{"resultType":..,"result":..}` for a query result.
pub fn value_json(v: &Value) -> String {
    let mut out = format!("{{\"resultType\":\"{}\",\"result\":", v.type_name());
    match v {
        Value::Scalar { t, v } => float_point(&mut out, *t, &format_float(*v)),
        Value::String { t, v } => float_point(&mut out, *t, v),
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{{\"metric\":{},\"value\":", labels_json(&s.labels));
                point(&mut out, s.t, &format_float(s.v));
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{{\"metric\":{},\"values\":", labels_json(&s.labels));
                samples_json(&mut out, &s.samples);
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

fn json_response(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(ContentType::json())
        .body(body)
}

/// `{"status":"success","data":<data>,"warnings":[..]}`; `data` is raw JSON.
pub fn success(data: &str, warnings: &[String]) -> HttpResponse {
    let mut body = format!("{{\"status\":\"success\",\"data\":{data}");
    if !warnings.is_empty() {
        let _ = write!(body, ",\"warnings\":{}", strings_json(warnings));
    }
    body.push('}');
    json_response(StatusCode::OK, body)
}

/// `{"status":"error","errorType":..,"error":..}` with its HTTP status.
pub fn error(
    status: StatusCode,
    error_type: &str,
    message: &str,
    warnings: &[String],
) -> HttpResponse {
    let mut body = format!(
        "{{\"status\":\"error\",\"errorType\":{},\"error\":{}",
        json_str(error_type),
        json_str(message)
    );
    if !warnings.is_empty() {
        let _ = write!(body, ",\"warnings\":{}", strings_json(warnings));
    }
    body.push('}');
    json_response(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_promql::{InstantSample, Series};

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float(2.0), "2");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(-1.5), "-1.5");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(1e-7), "0.0000001");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(123456789.125), "123456789.125");
    }

    #[test]
    fn timestamps_in_seconds() {
        assert_eq!(format_ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(format_ts(4000), "4");
        assert_eq!(format_ts(1050), "1.050");
        assert_eq!(format_ts(5), "0.005");
        assert_eq!(format_ts(-1500), "-1.500");
        assert_eq!(format_ts_float(1500), "1.5");
        assert_eq!(format_ts_float(1050), "1.05");
        assert_eq!(format_ts_float(-1500), "-1.5");
        assert_eq!(format_ts_float(4000), "4");
        assert_eq!(format_ts_float(1_435_781_451_781), "1435781451.781");
    }

    #[test]
    fn values_shape() {
        let s = value_json(&Value::Scalar { t: 4000, v: 2.0 });
        assert_eq!(s, r#"{"resultType":"scalar","result":[4,"2"]}"#);
        let s = value_json(&Value::Scalar {
            t: 1500,
            v: f64::INFINITY,
        });
        assert_eq!(s, r#"{"resultType":"scalar","result":[1.5,"+Inf"]}"#);
        let s = value_json(&Value::String {
            t: 1500,
            v: "a".into(),
        });
        assert_eq!(s, r#"{"resultType":"string","result":[1.5,"a"]}"#);
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        let v = value_json(&Value::Vector(vec![InstantSample {
            labels: l.clone(),
            t: 1500,
            v: 1.0,
        }]));
        assert_eq!(
            v,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1.500,"1"]}]}"#
        );
        let m = value_json(&Value::Matrix(vec![Series::new(
            l,
            vec![Sample { t: 0, v: f64::NAN }, Sample { t: 1000, v: 3.25 }],
        )]));
        assert!(m.ends_with(r#""values":[[0,"NaN"],[1,"3.25"]]}]}"#), "{m}");
        let parsed: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(parsed["resultType"], "matrix");
    }
}
