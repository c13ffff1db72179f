//! Seeded splits into train / validation / test sets, plain or stratified by class.
//!
//! Every function returns index lists (or [`Subset`]s) that depend only on the inputs and
//! the seed. Split sizes follow the fractions by the largest-remainder rule: each size is
//! `fraction × n` rounded down or up, and the sizes add up to `n`.

use std::collections::BTreeMap;

use sinew_tensor::{Generator, Tensor};

use crate::dataset::{Dataset, Subset};

/// Checks fractions (finite, non-negative, adding up to 1 within 1e-6) and returns them
/// normalised to add up to 1, so the sizes never add up to more than `n`.
#[track_caller]
fn check_fractions(op: &str, fractions: &[f64]) -> Vec<f64> {
    assert!(!fractions.is_empty(), "{op}: no fractions given");
    assert!(
        fractions.iter().all(|f| f.is_finite() && *f >= 0.0),
        "{op}: fractions must be finite and non-negative, got {fractions:?}"
    );
    let sum: f64 = fractions.iter().sum();
    assert!((sum - 1.0).abs() < 1e-6, "{op}: fractions must add up to 1, got {fractions:?} (sum {sum})");
    fractions.iter().map(|f| f / sum).collect()
}

/// Sizes `fraction × n`, rounded down, then the remaining units to the largest fractional
/// parts (ties to the earlier split): `(floors, fractional parts)`.
fn floors(n: usize, fractions: &[f64]) -> (Vec<usize>, Vec<f64>) {
    let quotas: Vec<f64> = fractions.iter().map(|f| f * n as f64).collect();
    let fl: Vec<usize> = quotas.iter().map(|q| (q.floor() as usize).min(n)).collect();
    let fr = quotas.iter().zip(&fl).map(|(q, &f)| q - f as f64).collect();
    (fl, fr)
}

fn largest_remainder(n: usize, fractions: &[f64]) -> Vec<usize> {
    let (mut sizes, fr) = floors(n, fractions);
    let mut left = n.saturating_sub(sizes.iter().sum());
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| fr[b].total_cmp(&fr[a]).then(a.cmp(&b)));
    for &k in order.iter().cycle() {
        if left == 0 {
            break;
        }
        sizes[k] += 1;
        left -= 1;
    }
    sizes
}

/// The sizes [`split_indices`] gives `n` samples for `fractions`.
///
/// # Panics
/// If the fractions are negative, not finite, or do not add up to 1.
///
/// ```
/// use sinew_data::split_sizes;
/// assert_eq!(split_sizes(150, &[0.7, 0.15, 0.15]), vec![105, 23, 22]); // 22.5 each: the tie goes to the first
/// assert_eq!(split_sizes(10, &[0.5, 0.5]), vec![5, 5]);
/// ```
#[track_caller]
pub fn split_sizes(n: usize, fractions: &[f64]) -> Vec<usize> {
    let fractions = &check_fractions("split_sizes", fractions)[..];
    largest_remainder(n, fractions)
}

/// A random partition of `0..n` into parts of the given fractions (the index form of
/// `torch.utils.data.random_split`). Each part lists its indices in random order.
///
/// # Panics
/// If the fractions are negative, not finite, or do not add up to 1.
///
/// ```
/// use sinew_data::split_indices;
/// let parts = split_indices(10, &[0.6, 0.2, 0.2], 0);
/// assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), vec![6, 2, 2]);
/// let mut all = parts.concat();
/// all.sort();
/// assert_eq!(all, (0..10).collect::<Vec<_>>());
/// assert_eq!(parts, split_indices(10, &[0.6, 0.2, 0.2], 0)); // same seed, same split
/// ```
#[track_caller]
pub fn split_indices(n: usize, fractions: &[f64], seed: u64) -> Vec<Vec<usize>> {
    let fractions = &check_fractions("split_indices", fractions)[..];
    let sizes = largest_remainder(n, fractions);
    let mut order: Vec<usize> = (0..n).collect();
    Generator::new(seed).shuffle(&mut order);
    let mut rest = &order[..];
    sizes
        .iter()
        .map(|&s| {
            let (part, tail) = rest.split_at(s);
            rest = tail;
            part.to_vec()
        })
        .collect()
}

/// A random `(train, test)` split of `0..n` with `test_fraction` of the samples in the
/// test part (`sklearn.model_selection.train_test_split` on indices).
///
/// # Panics
/// If `test_fraction` is outside `[0, 1]`.
///
/// ```
/// use sinew_data::train_test_split;
/// let (train, test) = train_test_split(150, 0.2, 42);
/// assert_eq!((train.len(), test.len()), (120, 30));
/// assert!(test.iter().all(|i| !train.contains(i)));
/// ```
#[track_caller]
pub fn train_test_split(n: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut parts = split_indices(n, &[1.0 - test_fraction, test_fraction], seed).into_iter();
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// A random `(train, validation, test)` split of `0..n`.
///
/// # Panics
/// If the fractions are outside `[0, 1]` or add up to more than 1.
///
/// ```
/// use sinew_data::train_val_test_split;
/// let (train, val, test) = train_val_test_split(1797, 0.1, 0.2, 0);
/// assert_eq!((train.len(), val.len(), test.len()), (1258, 180, 359));
/// ```
#[track_caller]
pub fn train_val_test_split(
    n: usize,
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let fractions = [1.0 - val_fraction - test_fraction, val_fraction, test_fraction];
    let mut parts = split_indices(n, &fractions, seed).into_iter();
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// Like [`split_indices`] but each class (value of `labels`, a 1-D tensor, cast to
/// `i64`) is split in the given fractions on its own, so every part keeps the class
/// proportions: a class of `m` samples puts `fraction × m` rounded down or up in each
/// part. Leftover units go where the part is furthest below its overall size, so part
/// sizes come within a unit or two of `fraction × n`. Parts list indices in random order.
///
/// # Panics
/// If `labels` is not 1-D, or the fractions are negative, not finite, or do not add up to 1.
///
/// ```
/// use sinew_data::{datasets, stratified_split_indices};
/// let iris = datasets::iris(); // 50 of each class
/// let parts = stratified_split_indices(iris.targets(), &[0.8, 0.2], 0);
/// let labels = iris.targets().to_vec::<i64>();
/// for class in 0..3 {
///     assert_eq!(parts[1].iter().filter(|&&i| labels[i] == class).count(), 10);
/// }
/// ```
#[track_caller]
pub fn stratified_split_indices(labels: &Tensor, fractions: &[f64], seed: u64) -> Vec<Vec<usize>> {
    let fractions = &check_fractions("stratified_split_indices", fractions)[..];
    assert!(
        labels.ndim() == 1,
        "stratified_split_indices: labels must be 1-D, got shape {:?}",
        labels.dims()
    );
    let labels = labels.to_vec::<i64>();
    let n = labels.len();
    let k = fractions.len();
    let mut classes: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &c) in labels.iter().enumerate() {
        classes.entry(c).or_default().push(i);
    }
    let mut g = Generator::new(seed);
    let target = largest_remainder(n, fractions);
    // per class: its floors, then leftovers one per part to the parts most below target
    let mut counts: Vec<(Vec<usize>, Vec<f64>)> =
        classes.values().map(|members| floors(members.len(), fractions)).collect();
    let mut assigned = vec![0usize; k];
    for (fl, _) in &counts {
        for (a, f) in assigned.iter_mut().zip(fl) {
            *a += f;
        }
    }
    for ((fl, fr), members) in counts.iter_mut().zip(classes.values()) {
        let left = members.len() - fl.iter().sum::<usize>();
        let mut order: Vec<usize> = (0..k).collect();
        let deficit = |p: usize| target[p] as i64 - assigned[p] as i64;
        order.sort_by(|&a, &b| deficit(b).cmp(&deficit(a)).then(fr[b].total_cmp(&fr[a])).then(a.cmp(&b)));
        for &p in order.iter().take(left) {
            fl[p] += 1;
            assigned[p] += 1;
        }
    }
    let mut parts: Vec<Vec<usize>> = target.iter().map(|&t| Vec::with_capacity(t)).collect();
    for ((fl, _), members) in counts.iter().zip(classes.values()) {
        let mut members = members.clone();
        g.shuffle(&mut members);
        let mut rest = &members[..];
        for (part, &s) in parts.iter_mut().zip(fl) {
            let (take, tail) = rest.split_at(s);
            part.extend_from_slice(take);
            rest = tail;
        }
    }
    for part in &mut parts {
        g.shuffle(part);
    }
    parts
}

/// A `(train, test)` split that keeps the class proportions of `labels` in both parts
/// (`train_test_split(..., stratify=y)`). See [`stratified_split_indices`].
///
/// # Panics
/// If `labels` is not 1-D or `test_fraction` is outside `[0, 1]`.
///
/// ```
/// use sinew_data::{datasets, stratified_train_test_split};
/// let digits = datasets::digits();
/// let (train, test) = stratified_train_test_split(digits.targets(), 0.25, 0);
/// assert_eq!(train.len() + test.len(), 1797);
/// assert!((test.len() as i64 - 449).abs() <= 1);
/// ```
#[track_caller]
pub fn stratified_train_test_split(
    labels: &Tensor,
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut parts = stratified_split_indices(labels, &[1.0 - test_fraction, test_fraction], seed).into_iter();
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// A `(train, validation, test)` split that keeps the class proportions of `labels` in
/// all three. See [`stratified_split_indices`].
///
/// # Panics
/// If `labels` is not 1-D or the fractions are outside `[0, 1]` or add up to more than 1.
///
/// ```
/// use sinew_data::{datasets, stratified_train_val_test_split};
/// let iris = datasets::iris();
/// let (train, val, test) = stratified_train_val_test_split(iris.targets(), 0.2, 0.2, 0);
/// assert_eq!((train.len(), val.len(), test.len()), (90, 30, 30));
/// ```
#[track_caller]
pub fn stratified_train_val_test_split(
    labels: &Tensor,
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let fractions = [1.0 - val_fraction - test_fraction, val_fraction, test_fraction];
    let mut parts = stratified_split_indices(labels, &fractions, seed).into_iter();
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// Splits a dataset into random [`Subset`]s of the given fractions
/// (`torch.utils.data.random_split`). Each subset holds a clone of `dataset`: pass an
/// `Arc` (or a [`TensorDataset`](crate::TensorDataset), whose clones share storage).
///
/// # Panics
/// If the fractions are negative, not finite, or do not add up to 1.
///
/// ```
/// use sinew_data::{Dataset, datasets, random_split};
/// let parts = random_split(datasets::iris(), &[0.8, 0.2], 0);
/// assert_eq!((parts[0].len(), parts[1].len()), (120, 30));
/// ```
#[track_caller]
pub fn random_split<D: Dataset + Clone>(dataset: D, fractions: &[f64], seed: u64) -> Vec<Subset<D>> {
    split_indices(dataset.len(), fractions, seed)
        .into_iter()
        .map(|idx| Subset::new(dataset.clone(), idx))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(labels: &[i64], part: &[usize], class: i64) -> usize {
        part.iter().filter(|&&i| labels[i] == class).count()
    }

    #[test]
    fn sizes_add_up_and_follow_fractions() {
        for n in [0, 1, 2, 7, 10, 99, 100, 1797] {
            for fr in [&[1.0][..], &[0.5, 0.5], &[0.7, 0.15, 0.15], &[0.29, 0.71], &[0.0, 1.0], &[0.1; 10]] {
                let s = split_sizes(n, fr);
                assert_eq!(s.iter().sum::<usize>(), n);
                for (&s, f) in s.iter().zip(fr) {
                    assert!((s as f64 - f * n as f64).abs() < 1.0 + 1e-9, "{n} {fr:?}: {s}");
                }
            }
        }
        assert_eq!(split_sizes(100, &[0.29, 0.71]), vec![29, 71]);
        // fractions a hair over 1 in total still partition n
        assert_eq!(split_sizes(10_000_000, &[0.500_000_4, 0.500_000_4]), vec![5_000_000, 5_000_000]);
        assert_eq!(split_indices(1000, &[0.333_333_4; 3], 0).concat().len(), 1000);
    }

    #[test]
    fn splits_partition_and_depend_on_the_seed() {
        let (a, b) = train_test_split(100, 0.3, 1);
        let (c, _) = train_test_split(100, 0.3, 2);
        assert_eq!((a.len(), b.len()), (70, 30));
        assert_ne!(a, c);
        let mut all = [a, b].concat();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_split_keeps_class_proportions() {
        // unbalanced classes: 7 of class 0, 23 of class 5, 61 of class 2, 9 of class -1
        let mut labels = Vec::new();
        for (c, m) in [(0i64, 7usize), (5, 23), (2, 61), (-1, 9)] {
            labels.extend(std::iter::repeat_n(c, m));
        }
        Generator::new(3).shuffle(&mut labels);
        let t = Tensor::from_vec(labels.clone(), &[labels.len()]).unwrap();
        for fractions in [&[0.8, 0.2][..], &[0.6, 0.2, 0.2], &[0.5, 0.25, 0.25], &[0.33, 0.33, 0.34]] {
            for seed in 0..5 {
                let parts = stratified_split_indices(&t, fractions, seed);
                let mut all = parts.concat();
                all.sort();
                assert_eq!(all, (0..labels.len()).collect::<Vec<_>>(), "a partition");
                for (part, f) in parts.iter().zip(fractions) {
                    for (c, m) in [(0i64, 7usize), (5, 23), (2, 61), (-1, 9)] {
                        let got = count(&labels, part, c) as f64;
                        assert!((got - f * m as f64).abs() <= 1.0, "{fractions:?} class {c}: {got} of {m}");
                    }
                    // overall size close to the target too
                    assert!((part.len() as f64 - f * 100.0).abs() <= 2.0, "{fractions:?}: {}", part.len());
                }
            }
        }
        let (train, test) = stratified_train_test_split(&t, 0.2, 9);
        assert_eq!((train.len(), test.len()), (80, 20));
    }

    #[test]
    fn stratified_split_is_reproducible_and_shuffled() {
        let t = Tensor::from_vec((0..60).map(|i| i % 3).collect::<Vec<i64>>(), &[60]).unwrap();
        let a = stratified_split_indices(&t, &[0.5, 0.5], 4);
        assert_eq!(a, stratified_split_indices(&t, &[0.5, 0.5], 4));
        assert_ne!(a, stratified_split_indices(&t, &[0.5, 0.5], 5));
        let mut sorted = a[0].clone();
        sorted.sort();
        assert_ne!(a[0], sorted, "parts are shuffled");
    }

    #[test]
    #[should_panic(expected = "fractions must add up to 1")]
    fn bad_fractions_panic() {
        split_indices(10, &[0.5, 0.6], 0);
    }
}
