//! Percentiles and medians, one definition for the report and the gates.

/// The `q`-th percentile (0..=100) of `values`, linear between the closest
/// ranks (numpy's default, so a reader can check a number by hand).
/// Sorts `values` in place; None when empty.
pub fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    Some(percentile_sorted(values, q))
}

/// The same on values already sorted ascending (not empty).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let rank = (q / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let low = rank.floor() as usize;
    let high = (low + 1).min(sorted.len() - 1);
    #[allow(clippy::cast_precision_loss)]
    let weight = rank - low as f64;
    sorted[low] + (sorted[high] - sorted[low]) * weight
}

pub fn median(values: &mut [f64]) -> Option<f64> {
    percentile(values, 50.0)
}

/// Relative change from `before` to `after` in percent; None when `before` is 0.
pub fn change_percent(before: f64, after: f64) -> Option<f64> {
    (before != 0.0).then(|| (after - before) / before.abs() * 100.0)
}

/// `part / whole` in percent; 0 for an empty whole.
pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        #[allow(clippy::cast_precision_loss)]
        let p = part as f64 / whole as f64 * 100.0;
        p
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut v, 50.0), Some(2.5));
        assert!((percentile(&mut v, 95.0).unwrap() - 3.85).abs() < 1e-12);
        assert_eq!(percentile(&mut v, 0.0), Some(1.0));
        assert_eq!(percentile(&mut v, 100.0), Some(4.0));
        let mut one = vec![7.0];
        assert_eq!(percentile(&mut one, 95.0), Some(7.0));
        assert_eq!(median(&mut []), None);
        let mut odd = vec![10.0, 30.0, 20.0];
        assert_eq!(median(&mut odd), Some(20.0));
    }

    #[test]
    fn changes_and_shares() {
        assert_eq!(change_percent(2.0, 3.0), Some(50.0));
        assert_eq!(change_percent(2.0, 1.0), Some(-50.0));
        assert_eq!(change_percent(0.0, 1.0), None);
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(percent(0, 0), 0.0);
    }
}
