//! The one batching helper: cuts a sequence into consecutive groups bounded by count and bytes.

/// Cuts `items` into consecutive groups of at most `max_count` items whose sizes (by `size_of`)
/// plus `overhead` stay within `max_bytes`. An item too large on its own still gets a group of
/// its own, so nothing is dropped; the caller decides what to do with it.
pub fn cut<T>(
    items: impl IntoIterator<Item = T>,
    max_count: usize,
    max_bytes: usize,
    overhead: usize,
    size_of: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let max_count = max_count.max(1);
    let mut groups = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = overhead;
    for item in items {
        let size = size_of(&item);
        let full = current.len() >= max_count || bytes + size > max_bytes;
        if full && !current.is_empty() {
            groups.push(std::mem::take(&mut current));
            bytes = overhead;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_respect_the_count_limit_and_keep_order() {
        let groups = cut(0..25, 10, usize::MAX, 0, |_| 1);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert_eq!(groups.concat(), (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn groups_respect_the_byte_limit_including_overhead() {
        let groups = cut([40, 40, 40, 10], 100, 100, 10, |size| *size);
        assert_eq!(groups, vec![vec![40, 40], vec![40, 10]]);
    }

    #[test]
    fn an_oversized_item_gets_a_group_of_its_own() {
        let groups = cut([5, 500, 5], 10, 100, 0, |size| *size);
        assert_eq!(groups, vec![vec![5], vec![500], vec![5]]);
    }

    #[test]
    fn nothing_in_means_no_groups() {
        assert!(cut(Vec::<u8>::new(), 10, 10, 0, |_| 1).is_empty());
    }
}
