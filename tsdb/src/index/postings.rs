//! Postings lists (sorted series references per label pair) and set operations on them.

use super::{IndexError, SeriesRef};
use crate::encoding::Cursor;

/// Decodes a postings section body: `#entries <4b>` then that many 4-byte series refs.
pub fn decode_postings(body: &[u8], offset: u64) -> Result<Vec<SeriesRef>, IndexError> {
    let err = IndexError::decode("postings", offset);
    let mut c = Cursor::new(body);
    let n = c.be_u32().map_err(&err)? as usize;
    if c.remaining() != n.saturating_mul(4) {
        return Err(IndexError::corrupt(
            "postings",
            offset,
            format!("{n} entries but {} bytes", c.remaining()),
        ));
    }
    let mut out = Vec::with_capacity(n);
    let mut prev: Option<u32> = None;
    for _ in 0..n {
        let r = c.be_u32().map_err(&err)?;
        if prev.is_some_and(|p| p >= r) {
            return Err(IndexError::corrupt(
                "postings",
                offset,
                "refs not increasing",
            ));
        }
        prev = Some(r);
        out.push(r);
    }
    Ok(out)
}

/// Encodes a postings section body.
pub fn encode_postings(refs: &[SeriesRef]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + refs.len() * 4);
    body.extend_from_slice(&(refs.len() as u32).to_be_bytes());
    for r in refs {
        body.extend_from_slice(&r.to_be_bytes());
    }
    body
}

/// Refs present in both sorted lists.
pub fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Refs of `a` not in `b` (both sorted).
pub fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut j = 0;
    let mut out = Vec::with_capacity(a.len());
    for &x in a {
        while b.get(j).is_some_and(|&y| y < x) {
            j += 1;
        }
        if b.get(j) != Some(&x) {
            out.push(x);
        }
    }
    out
}

/// Sorted, deduplicated union of sorted lists.
pub fn union_all(lists: Vec<Vec<SeriesRef>>) -> Vec<SeriesRef> {
    let mut lists = lists;
    if lists.len() <= 1 {
        return lists.pop().unwrap_or_default();
    }
    let mut out: Vec<SeriesRef> = lists.concat();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 7, 9]), vec![3, 7]);
        assert_eq!(subtract(&[1, 3, 5, 7], &[2, 3, 7, 9]), vec![1, 5]);
        assert_eq!(
            union_all(vec![vec![1, 5], vec![2, 5, 9], vec![]]),
            vec![1, 2, 5, 9]
        );
        assert_eq!(union_all(vec![]), Vec::<u32>::new());
    }

    #[test]
    fn codec() {
        let body = encode_postings(&[3, 8, 100]);
        assert_eq!(decode_postings(&body, 0).unwrap(), vec![3, 8, 100]);
        assert!(decode_postings(&body[..body.len() - 1], 0).is_err());
        assert!(decode_postings(&encode_postings(&[5, 5]), 0).is_err());
    }
}
